"""A capture as a timeline a student reads without Wireshark.

One line per packet, the client always on the left so the arrow shows who sent::

    time (ms)  conv  client               server               flags      seq/ack (relative)  what it means
        0.000  #1    10.99.0.20:40000 -> 10.99.0.10:2121       [SYN]      seq=0 win=64240 len=0  handshake 1/3 (mss=1460 wscale=7)
        0.041  #1    10.99.0.20:40000 <- 10.99.0.10:2121       [SYN,ACK]  seq=0 ack=1 ...        handshake 2/3
        1.210  #1    10.99.0.20:40000 -> 10.99.0.10:2121       [PSH,ACK]  seq=1 ack=1 ... len=16 ftp C "get big.bin"

Sequence numbers are relative to each side's first one (its ISN), as the
tutorials draw them. Each direction of a TCP connection is reassembled in
sequence order -- a segment that arrives early is held until the gap before
it is filled, a retransmitted one is not fed twice -- and the bytes go to the
exercise's own decoder (``decoders``), so a message is named on the packet
where it completed, however the sender's writes were cut or merged.

A long run of plain data segments and their ACKs (a 16 MiB ftp transfer is
~800 packets) is cut to its first and last few lines and a count.

    python -m socklab inspector timeline labs/ftp/out/capture.pcap --exercise ftp --svg capture.svg
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from socklab.inspector.decoders import EXERCISES, Guarded, Note, streams_for
from socklab.inspector.pcap import ACK, FIN, RST, SYN, Packet, read_pcap, tcp_option_values
from socklab.inspector.summary import Endpoint, endpoint_name

HEAD, TAIL = 3, 3  # lines kept at each end of a long run of data packets
MAX_NOTES = 4  # notes shown on one line; more are counted
SEQ_SPACE = 1 << 32


@dataclass
class Side:
    """One direction of a TCP connection: where its sequence numbers start, what arrived so far."""

    isn: int | None = None
    next: int = 0  # offset in the byte stream of the next byte expected
    pending: dict[int, bytes] = field(default_factory=dict)  # arrived early, waiting for a gap to fill
    wscale: int | None = None
    fin: int | None = None  # relative seq of its FIN
    stream: Guarded | None = None

    def rel(self, seq: int) -> int:
        # Modulo 2**32, with "just before the ISN" negative rather than four billion.
        value = (seq - (self.isn or 0)) % SEQ_SPACE
        return value - SEQ_SPACE if value >= SEQ_SPACE // 2 else value

    def accept(self, offset: int, payload: bytes) -> tuple[bytes, str]:
        """The bytes this segment delivers in order (maybe with held ones), and a mark."""
        end = offset + len(payload)
        if end <= self.next or self.pending.get(offset) == payload:
            return b"", "RETRANSMISSION"
        mark = ""
        if offset < self.next:  # partly seen: only the new tail goes on
            payload, offset, mark = payload[self.next - offset :], self.next, "RETRANSMISSION (with new data)"
        if offset > self.next:
            self.pending[offset] = payload
            return b"", f"OUT OF ORDER: {offset - self.next} bytes missing before it, held"
        delivered = bytearray(payload)
        self.next = end
        held = 0
        for _ in range(len(self.pending)):  # each turn takes one held segment, or stops
            first = min(self.pending)
            if first > self.next:
                break
            piece = self.pending.pop(first)
            if first + len(piece) > self.next:
                delivered += piece[self.next - first :]
                held += first + len(piece) - self.next
                self.next = first + len(piece)
        if held:
            mark = mark or f"fills the gap: {held} held bytes delivered with it"
        return bytes(delivered), mark


@dataclass
class Conversation:
    number: int
    proto: str
    client: Endpoint
    server: Endpoint
    up: Side = field(default_factory=Side)  # client -> server
    down: Side = field(default_factory=Side)  # server -> client
    shake: int = 0  # handshake steps seen, 0..3
    fins: int = 0
    closed: bool = False  # the last ACK after both FINs was marked


@dataclass
class Row:
    """One packet as the timeline shows it."""

    packet: Packet
    ms: float
    conversation: Conversation | None = None
    from_client: bool = True
    seq: int | None = None
    ack: int | None = None
    window: int | None = None
    marks: list[str] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    @property
    def notable(self) -> bool:
        """Worth a line even inside a long transfer: control flags, marks, or a whole message."""
        if self.packet.proto != "TCP":
            return True
        return bool(self.packet.flags & (SYN | FIN | RST) or self.marks or any(not n.data for n in self.notes))


@dataclass
class Run:
    """A stretch of plain data segments and ACKs, shown as one line."""

    rows: list[Row]

    @property
    def data_segments(self) -> int:
        return sum(1 for r in self.rows if r.packet.payload)

    @property
    def bytes(self) -> int:
        return sum(len(r.packet.payload) for r in self.rows)

    @property
    def from_client(self) -> bool:
        """The direction most of the data went."""
        up = sum(len(r.packet.payload) for r in self.rows if r.from_client)
        return up * 2 >= self.bytes

    def describe(self) -> str:
        acks = len(self.rows) - self.data_segments
        return f"... {self.data_segments} data segments ({self.bytes} bytes)" + (f" and {acks} ACKs" if acks else "") + " ..."


Shown = Union[Row, Run]


class Timeline:
    """Builds rows from packets, one conversation state per TCP connection or UDP flow."""

    def __init__(self, exercise: str = "") -> None:
        self.exercise = exercise
        self.conversations: list[Conversation] = []
        self._by_key: dict[frozenset, Conversation] = {}
        self.first: float | None = None

    def add(self, packet: Packet) -> Row:
        if self.first is None:
            self.first = packet.time
        row = Row(packet, (packet.time - self.first) * 1000)
        if packet.proto not in ("TCP", "UDP"):
            return row
        row.conversation = conversation = self._conversation(packet)
        row.from_client = (packet.src, packet.sport) == conversation.client
        sender, receiver = (conversation.up, conversation.down) if row.from_client else (conversation.down, conversation.up)
        if packet.proto == "UDP":
            if sender.stream and packet.payload:
                row.notes += sender.stream.feed(packet.payload)
            return row
        self._tcp(row, conversation, sender, receiver)
        return row

    def _conversation(self, packet: Packet) -> Conversation:
        key = frozenset(((packet.src, packet.sport), (packet.dst, packet.dport), packet.proto))
        found = self._by_key.get(key)
        opening = packet.proto == "TCP" and packet.flags & SYN and not packet.flags & ACK
        if found and opening and found.up.isn is not None and found.up.isn != packet.seq:
            found = None  # the same ports again after a close: a new connection
        if found is None:
            # The client is the side that opened: the SYN's sender, or for UDP
            # (and TCP caught mid-way) the sender of the first packet seen.
            swap = packet.proto == "TCP" and packet.flags & SYN and packet.flags & ACK
            client, server = packet.endpoints[::-1] if swap else packet.endpoints
            found = Conversation(len(self.conversations) + 1, packet.proto, client, server)
            pair = streams_for(self.exercise)
            if pair:
                found.up.stream, found.down.stream = pair
            self.conversations.append(found)
            self._by_key[key] = found
        return found

    def _tcp(self, row: Row, conv: Conversation, sender: Side, receiver: Side) -> None:
        packet, who = row.packet, "client" if row.from_client else "server"
        if packet.flags & SYN:
            if sender.isn is not None and sender.isn == packet.seq:
                row.marks.append("RETRANSMISSION (SYN)")
            sender.isn, sender.next = packet.seq, 0
            options = tcp_option_values(packet.tcp_options)
            sender.wscale = options.get("wscale")
            step = 2 if packet.flags & ACK else 1
            conv.shake = max(conv.shake, step)
            shown = " ".join(f"{k}={v}" for k, v in options.items())
            row.marks.append(f"handshake {step}/3" + (f" ({shown})" if shown else ""))
        elif sender.isn is None:
            sender.isn = (packet.seq - 1) % SEQ_SPACE  # caught mid-way: its first byte seen is seq=1
        row.seq = sender.rel(packet.seq)
        if packet.flags & ACK and receiver.isn is not None:
            row.ack = receiver.rel(packet.ack)
        # Window scaling applies once both SYNs announced it, and never to a SYN itself.
        scaled = not packet.flags & SYN and sender.wscale is not None and receiver.wscale is not None
        row.window = packet.window << sender.wscale if scaled else packet.window

        if conv.shake == 2 and row.from_client and packet.flags & ACK and not packet.flags & SYN:
            conv.shake = 3
            row.marks.append("handshake 3/3")
        if packet.payload:
            delivered, mark = sender.accept(row.seq - 1, packet.payload)
            if mark:
                row.marks.append(mark)
            if delivered and sender.stream:
                row.notes += sender.stream.feed(delivered)
        if packet.flags & FIN:
            fin_seq = row.seq + len(packet.payload)
            if sender.fin == fin_seq:
                row.marks.append("RETRANSMISSION (FIN)")
            else:
                sender.fin = fin_seq
                conv.fins += 1
                row.marks.append(f"close {conv.fins}: FIN from {who}")
                if sender.stream:
                    row.notes += sender.stream.close()
        elif conv.fins == 2 and not conv.closed and not packet.payload and not packet.flags & RST:
            conv.closed = True
            row.marks.append("close 3: last ACK")
        if packet.flags & RST:
            row.marks.append(f"RESET by {who}")


def build(packets: list[Packet], exercise: str = "") -> tuple[list[Row], list[Conversation]]:
    timeline = Timeline(exercise)
    rows = [timeline.add(packet) for packet in packets]
    return rows, timeline.conversations


def collapse(rows: list[Row], head: int = HEAD, tail: int = TAIL) -> list[Shown]:
    """Every notable row; of a long run of plain data rows, the first and last few and a Run between."""
    shown: list[Shown] = []
    run: list[Row] = []

    def flush() -> None:
        if len(run) > head + tail + 1:  # hiding a single line would save nothing
            shown.extend(run[:head])
            shown.append(Run(run[head : len(run) - tail]))
            shown.extend(run[len(run) - tail :])
        else:
            shown.extend(run)
        run.clear()

    for row in rows:
        if row.notable:
            flush()
            shown.append(row)
        else:
            run.append(row)
    flush()
    return shown


def _notes_text(row: Row) -> str:
    texts = row.marks + [note.text for note in row.notes[:MAX_NOTES]]
    if len(row.notes) > MAX_NOTES:
        texts.append(f"(+{len(row.notes) - MAX_NOTES} more messages)")
    return "  ".join(texts)


def format_row(row: Row, width: int) -> str:
    packet, conv = row.packet, row.conversation
    if conv is None:
        return f"{row.ms:10.3f}  --  {packet.src} -> {packet.dst}  {packet.proto}"
    left, right = endpoint_name(conv.client), endpoint_name(conv.server)
    arrow = "->" if row.from_client else "<-"
    head = f"{row.ms:10.3f}  #{conv.number:<3} {left:>{width}} {arrow} {right:<{width}}"
    if packet.proto == "UDP":
        middle = f"{'UDP':<11} len={len(packet.payload)}"
    else:
        ack = f" ack={row.ack}" if row.ack is not None else ""
        middle = f"{'[' + packet.flag_names() + ']':<11} seq={row.seq}{ack} win={row.window} len={len(packet.payload)}"
    notes = _notes_text(row)
    return f"{head}  {middle}" + (f"  {notes}" if notes else "")


def render(shown: list[Shown], conversations: list[Conversation], exercise: str = "") -> str:
    width = max([len(endpoint_name(c.client)) for c in conversations] + [len(endpoint_name(c.server)) for c in conversations] + [6])
    packets = sum(len(s.rows) if isinstance(s, Run) else 1 for s in shown)
    decoded = f"payload decoded as {exercise}" if exercise in EXERCISES else "payload not decoded (no --exercise)"
    if exercise and exercise not in EXERCISES:
        decoded = f"payload not decoded (no decoder for {exercise!r})"
    lines = [f"timeline: {packets} packets, {len(conversations)} conversations, {decoded}; "
             "times in ms from the first packet, seq/ack relative to each side's first"]
    for conv in conversations:
        lines.append(f"  #{conv.number} {conv.proto} client {endpoint_name(conv.client)}  server {endpoint_name(conv.server)}")
    for item in shown:
        lines.append(f"{'':10}  {item.describe()}" if isinstance(item, Run) else format_row(item, width))
    return "\n".join(lines)


def timeline_text(packets: list[Packet], exercise: str = "", full: bool = False) -> str:
    rows, conversations = build(packets, exercise)
    shown = rows if full else collapse(rows)
    return render(shown, conversations, exercise)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pcap", help="a capture file written by tcpdump -w")
    parser.add_argument("--exercise", default="", choices=["", *sorted(EXERCISES)],
                        help="decode the payload with this exercise's wire format")
    parser.add_argument("--svg", metavar="OUT", help="also draw the conversation as a sequence diagram (SVG)")
    parser.add_argument("--full", action="store_true", help="one line for every packet, even in long transfers")


def main(args: argparse.Namespace) -> int:
    from socklab.inspector.svg import sequence_diagram

    rows, conversations = build(read_pcap(args.pcap), args.exercise)
    shown = rows if args.full else collapse(rows)
    print(render(shown, conversations, args.exercise))
    if args.svg:
        Path(args.svg).write_text(sequence_diagram(shown, conversations))
        print(f"sequence diagram: {args.svg}")
    return 0
