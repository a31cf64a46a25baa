"""What crossed the network, per conversation, from a list of packets.

For each TCP connection: the three-way handshake, segments and payload bytes
in each direction, and how it closed (FIN from whom first, or a reset). For
UDP: datagrams and bytes each way -- and no handshake, because there is none.

    python -m socklab inspector summary labs/ftp/out/capture.pcap
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Iterable

from socklab.inspector.pcap import ACK, FIN, RST, SYN, Packet, read_pcap, tcp_option_values
from socklab.progress import human_size

Endpoint = tuple[str, int]


def endpoint_name(endpoint: Endpoint) -> str:
    host, port = endpoint
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass
class Direction:
    packets: int = 0
    payload_segments: int = 0
    payload_bytes: int = 0
    largest: int = 0  # payload of the biggest segment or datagram
    window_min: int | None = None  # windows this side advertised, scaled when both SYNs allowed it
    window_max: int = 0
    wscale: int | None = None  # the shift its SYN announced

    def window(self, value: int) -> None:
        self.window_min = value if self.window_min is None else min(self.window_min, value)
        self.window_max = max(self.window_max, value)


@dataclass
class Conversation:
    proto: str
    client: Endpoint
    server: Endpoint
    first: float
    last: float = 0.0
    events: list[tuple[float, str]] = field(default_factory=list)
    first_data: tuple[float, str] | None = None  # when the first payload byte went, and who sent it
    up: Direction = field(default_factory=Direction)  # client -> server
    down: Direction = field(default_factory=Direction)  # server -> client

    def add(self, packet: Packet) -> None:
        self.last = packet.time
        from_client = (packet.src, packet.sport) == self.client
        direction = self.up if from_client else self.down
        other = self.down if from_client else self.up
        who = "client" if from_client else "server"
        direction.packets += 1
        if packet.payload:
            direction.payload_segments += 1
            direction.payload_bytes += len(packet.payload)
            direction.largest = max(direction.largest, len(packet.payload))
            if self.first_data is None:
                self.first_data = (packet.time, who)
        if self.proto != "TCP":
            return
        if packet.flags & SYN:
            direction.wscale = tcp_option_values(packet.tcp_options).get("wscale")
        # The window field counts in units of 2**shift once both SYNs announced a shift (RFC 7323).
        scaled = not packet.flags & SYN and direction.wscale is not None and other.wscale is not None
        direction.window(packet.window << direction.wscale if scaled else packet.window)
        if packet.flags & SYN:
            self._once("SYN-ACK" if packet.flags & ACK else "SYN", packet.time)
        elif packet.flags & ACK and self._seen("SYN-ACK") and not self._seen("ACK") and from_client:
            self._once("ACK", packet.time)
        if packet.flags & FIN:
            self._once(f"FIN from {who}", packet.time)
        if packet.flags & RST:
            self._once(f"RST from {who}", packet.time)

    def _offload_note(self) -> str:
        # On a container's veth the kernel hands tcpdump segments before they
        # are cut to the MTU (TSO/GRO): 64 KiB "segments" are real captures.
        if self.proto == "TCP" and max(self.up.largest, self.down.largest) > 1500:
            return " (over the MTU: captured before segmentation offload cut it)"
        return ""

    def _seen(self, name: str) -> bool:
        return any(event == name for _, event in self.events)

    def _once(self, name: str, time: float) -> None:
        if not self._seen(name):
            self.events.append((time, name))

    def describe(self) -> list[str]:
        def ms(time: float) -> str:
            return f"+{(time - self.first) * 1000:.3f} ms"

        def amount(d: Direction) -> str:
            unit = "segments" if self.proto == "TCP" else "datagrams"
            count = d.payload_segments if self.proto == "TCP" else d.packets
            return f"{count} {unit} with data, {d.payload_bytes} bytes ({human_size(d.payload_bytes)})" + (
                f", {d.packets} packets in all" if self.proto == "TCP" else "")

        arrow = f"{endpoint_name(self.client)} -> {endpoint_name(self.server)}"
        lines = [f"{self.proto} {arrow}"]
        if self.proto == "TCP":
            shake = [f"{name} {ms(t)}" for t, name in self.events if name in ("SYN", "SYN-ACK", "ACK")]
            lines.append("  handshake: " + (", ".join(shake) if shake else "not captured (started before the capture)"))
        else:
            lines.append("  no handshake: UDP sends datagrams without a connection")
        lines.append(f"  client -> server: {amount(self.up)}")
        lines.append(f"  server -> client: {amount(self.down)}")
        lines.append(f"  largest {'segment' if self.proto == 'TCP' else 'datagram'}: "
                     f"client {self.up.largest} bytes, server {self.down.largest} bytes"
                     + self._offload_note())
        syn = next((t for t, name in self.events if name == "SYN"), None)
        if self.first_data is not None:
            since = f"{(self.first_data[0] - syn) * 1000:.3f} ms from SYN to first data" if syn is not None \
                else f"first data {ms(self.first_data[0])}"
            lines.append(f"  {since} (the {self.first_data[1]} spoke first)")
        if self.proto == "TCP":
            both_scaled = self.up.wscale is not None and self.down.wscale is not None
            lines.append("  windows advertised: " + ", ".join(
                f"{who} {d.window_min}..{d.window_max} bytes" for who, d in (("client", self.up), ("server", self.down))
                if d.window_min is not None) + ("" if both_scaled else " (raw field: no window scale seen in both SYNs)"))
            ends = [f"{name} {ms(t)}" for t, name in self.events if name.startswith(("FIN", "RST"))]
            lines.append("  close: " + (", ".join(ends) if ends else "still open when the capture stopped"))
        lines.append(f"  duration: {(self.last - self.first) * 1000:.3f} ms")
        return lines


def conversations(packets: Iterable[Packet]) -> list[Conversation]:
    found: dict[frozenset, Conversation] = {}
    for packet in packets:
        if packet.proto not in ("TCP", "UDP"):
            continue
        key = frozenset(((packet.src, packet.sport), (packet.dst, packet.dport), packet.proto))
        conversation = found.get(key)
        if conversation is None:
            # The client is the side that opened: the SYN's sender, or for UDP
            # (and TCP caught mid-way) the sender of the first packet seen.
            opener_is_src = not (packet.proto == "TCP" and packet.flags & SYN and packet.flags & ACK)
            client, server = packet.endpoints if opener_is_src else packet.endpoints[::-1]
            conversation = found[key] = Conversation(packet.proto, client, server, packet.time)
        conversation.add(packet)
    return list(found.values())


def summarize(packets: list[Packet]) -> str:
    found = conversations(packets)
    lines = [f"{len(packets)} packets captured, {len(found)} conversations"]
    for conversation in found:
        lines.extend(conversation.describe())
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pcap", help="a capture file written by tcpdump -w")


def main(args: argparse.Namespace) -> int:
    print(summarize(read_pcap(args.pcap)))
    return 0
