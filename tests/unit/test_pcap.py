"""The pcap reader and the summary, on captures built here byte by byte.

(The comparison with what tcpdump itself reads is a container test, in
tests/containers/test_ftp_lab.py, on a capture tcpdump wrote.)
"""

from __future__ import annotations

import io
import struct

import pytest

from socklab.inspector.pcap import ACK, FIN, PSH, RST, SYN, PcapError, read_packets, tcp_option_values
from socklab.inspector.summary import conversations, summarize

CLIENT, SERVER = ("10.99.0.20", 40000), ("10.99.0.10", 2121)


def ipv4(src: str, dst: str, proto: int, payload: bytes) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, proto, 0,
                         bytes(map(int, src.split("."))), bytes(map(int, dst.split("."))))
    return header + payload


def tcp(sport: int, dport: int, flags: int, payload: bytes = b"", seq: int = 1, ack: int = 0) -> bytes:
    return struct.pack("!HHIIHHHH", sport, dport, seq, ack, (5 << 12) | flags, 65535, 0, 0) + payload


def ethernet(packet: bytes, ethertype: int = 0x0800) -> bytes:
    frame = b"\x02" * 6 + b"\x04" * 6 + struct.pack("!H", ethertype) + packet
    return frame + b"\x00" * max(0, 60 - len(frame))  # padded as on the wire


def pcap(frames: list[tuple[float, bytes]], linktype: int = 1, magic: int = 0xA1B2C3D4, order: str = "<") -> io.BytesIO:
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 262144, linktype)
    for time, frame in frames:
        out += struct.pack(order + "IIII", int(time), round((time % 1) * 1e6), len(frame), len(frame)) + frame
    return io.BytesIO(out)


def segment(src, dst, flags, payload=b""):
    return ethernet(ipv4(src[0], dst[0], 6, tcp(src[1], dst[1], flags, payload)))


class Flow:
    """A TCP connection built segment by segment, seq and ack kept as a real stack would.

    ``send("c", ...)`` is the client sending, ``send("s", ...)`` the server. A
    retransmission passes the ``seq`` it had the first time (``flow.seq["c"]``
    before the first send); an out-of-order test sends with ``seq=`` ahead.
    """

    def __init__(self, client=CLIENT, server=SERVER, isn=(1000, 7000), start=1.0, step=0.001):
        self.ends = {"c": client, "s": server}
        self.seq = {"c": isn[0], "s": isn[1]}
        self.frames: list[tuple[float, bytes]] = []
        self.time, self.step = start, step

    def send(self, side: str, flags: int, payload: bytes = b"", seq: int | None = None,
             options: bytes = b"", window: int = 65535) -> None:
        other = "s" if side == "c" else "c"
        (src, sport), (dst, dport) = self.ends[side], self.ends[other]
        own = self.seq[side] if seq is None else seq
        ack = self.seq[other] if flags & ACK else 0
        options += b"\x00" * (-len(options) % 4)
        header = struct.pack("!HHIIHHHH", sport, dport, own % 2**32, ack % 2**32,
                             ((5 + len(options) // 4) << 12) | flags, window, 0, 0)
        self.frames.append((self.time, ethernet(ipv4(src, dst, 6, header + options + payload))))
        self.time += self.step
        end = own + len(payload) + (1 if flags & (SYN | FIN) else 0)
        self.seq[side] = max(self.seq[side], end)

    def handshake(self, wscale: tuple[int, int] | None = None) -> None:
        def opts(shift):
            return b"\x02\x04\x05\xb4" + (b"\x01\x03\x03" + bytes([shift]) if shift is not None else b"")
        self.send("c", SYN, options=opts(wscale[0] if wscale else None))
        self.send("s", SYN | ACK, options=opts(wscale[1] if wscale else None))
        self.send("c", ACK)

    def close(self) -> None:
        self.send("c", FIN | ACK)
        self.send("s", FIN | ACK)
        self.send("c", ACK)

    def packets(self):
        return list(read_packets(pcap(self.frames)))


CONNECTION = [
    (1.000, segment(CLIENT, SERVER, SYN)),
    (1.001, segment(SERVER, CLIENT, SYN | ACK)),
    (1.002, segment(CLIENT, SERVER, ACK)),
    (1.003, segment(CLIENT, SERVER, PSH | ACK, b"C\x00\x00\x00\x02ls")),
    (1.004, segment(SERVER, CLIENT, PSH | ACK, b"O\x00\x00\x00\x00")),
    (1.005, segment(CLIENT, SERVER, FIN | ACK)),
    (1.006, segment(SERVER, CLIENT, FIN | ACK)),
    (1.007, segment(CLIENT, SERVER, ACK)),
]


def test_ethernet_ipv4_tcp_fields_are_decoded():
    packets = list(read_packets(pcap(CONNECTION)))
    assert len(packets) == 8
    data = packets[3]
    assert (data.src, data.sport, data.dst, data.dport) == (*CLIENT, *SERVER)
    assert data.proto == "TCP" and data.flag_names() == "PSH,ACK"
    assert data.payload == b"C\x00\x00\x00\x02ls"  # the Ethernet padding is not payload
    assert packets[0].payload == b"" and packets[0].time == pytest.approx(1.0)


def test_big_endian_and_nanosecond_files_read_the_same():
    little = list(read_packets(pcap(CONNECTION)))
    big = list(read_packets(pcap(CONNECTION, order=">")))
    assert [(p.src, p.flags, p.payload) for p in big] == [(p.src, p.flags, p.payload) for p in little]


def test_ipv6_udp_on_linux_cooked_capture():
    src = bytes.fromhex("fd00" + "00" * 13 + "14")
    dst = bytes.fromhex("fd00" + "00" * 13 + "0a")
    udp = struct.pack("!HHHH", 5555, 9999, 8 + 4, 0) + b"ping"
    ip6 = struct.pack("!IHBB16s16s", 6 << 28, len(udp), 17, 64, src, dst) + udp
    sll = struct.pack("!HHH8sH", 0, 1, 6, b"\x00" * 8, 0x86DD) + ip6
    (packet,) = read_packets(pcap([(2.0, sll)], linktype=113))
    assert (packet.proto, packet.src, packet.sport, packet.dport, packet.payload) == ("UDP", "fd00::14", 5555, 9999, b"ping")


def test_a_capture_cut_short_ends_at_the_last_whole_packet():
    data = pcap(CONNECTION).getvalue()
    assert len(list(read_packets(io.BytesIO(data[:-10])))) == 7


def test_not_a_pcap_file_is_refused_clearly():
    with pytest.raises(PcapError, match="not a pcap file"):
        list(read_packets(io.BytesIO(b"\x0a\x0d\x0d\x0a" + b"\x00" * 40)))


def test_summary_tells_handshake_bytes_each_way_and_close():
    (conversation,) = conversations(read_packets(pcap(CONNECTION)))
    assert (conversation.client, conversation.server) == (CLIENT, SERVER)
    assert conversation.up.payload_bytes == 7 and conversation.down.payload_bytes == 5
    text = summarize(list(read_packets(pcap(CONNECTION))))
    assert "handshake: SYN +0.000 ms, SYN-ACK +1.000 ms, ACK +2.000 ms" in text
    assert "close: FIN from client +5.000 ms, FIN from server +6.000 ms" in text


def test_tcp_options_give_mss_and_window_scale():
    flow = Flow()
    flow.handshake(wscale=(7, 9))
    syn = flow.packets()[0]
    assert tcp_option_values(syn.tcp_options) == {"mss": 1460, "wscale": 7}
    assert tcp_option_values(b"\x01\x03") == {}  # a truncated option ends the list, no loop


def test_summary_reports_a_reset_and_a_connection_caught_midway():
    packets = list(read_packets(pcap([CONNECTION[3], (1.1, segment(SERVER, CLIENT, RST | ACK))])))
    text = summarize(packets)
    assert "handshake: not captured" in text
    assert "close: RST from server" in text


def test_the_first_fragment_of_a_datagram_is_marked():
    udp = struct.pack("!HHHH", 5555, 9999, 8 + 3000, 0) + bytes(1472)
    first = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 7, 0x2000, 64, 17, 0,
                        bytes([10, 99, 0, 20]), bytes([10, 99, 0, 10])) + udp  # MF set, offset 0
    (packet,) = read_packets(pcap([(1.0, ethernet(first))]))
    assert packet.proto == "UDP" and packet.more_fragments and len(packet.payload) == 1472
    (whole,) = read_packets(pcap([(1.0, ethernet(ipv4("10.99.0.20", "10.99.0.10", 17, udp[:8] + b"hi")))]))
    assert not whole.more_fragments
