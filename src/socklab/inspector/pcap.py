"""Reading pcap files, the format ``tcpdump -w`` writes, with the standard library.

    file    = global header (24 bytes: magic, version, snaplen, link type)
              then records: (ts_sec, ts_frac, captured length, original length), frame bytes
    frame   = link layer (Ethernet, Linux cooked v1/v2, or raw IP)
              -> IPv4 | IPv6 -> TCP | UDP -> payload

Only what a socket-programming lab needs is decoded; anything else (ARP,
ICMP, IP fragments after the first) comes out with ``proto`` set and no ports.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_VLAN = (0x8100, 0x88A8)

_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}

IPV6_EXTENSION_HEADERS = (0, 43, 60)  # hop-by-hop, routing, destination options

# TCP flag bits, in header order
FIN, SYN, RST, PSH, ACK, URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
FLAG_NAMES = ((SYN, "SYN"), (FIN, "FIN"), (RST, "RST"), (PSH, "PSH"), (ACK, "ACK"), (URG, "URG"))


class PcapError(ValueError):
    pass


@dataclass
class Packet:
    time: float
    src: str = ""
    dst: str = ""
    proto: str = "other"  # "TCP", "UDP", or what else the link or IP layer said
    sport: int = 0
    dport: int = 0
    flags: int = 0
    seq: int = 0
    ack: int = 0
    window: int = 0
    payload: bytes = field(default=b"", repr=False)
    #: IPv4 "more fragments": this packet holds only the start of its datagram
    #: (a UDP header's length then counts bytes that follow in other packets)
    more_fragments: bool = False
    tcp_options: bytes = field(default=b"", repr=False)

    def flag_names(self) -> str:
        return ",".join(name for bit, name in FLAG_NAMES if self.flags & bit)

    @property
    def endpoints(self) -> tuple[tuple[str, int], tuple[str, int]]:
        return (self.src, self.sport), (self.dst, self.dport)


def tcp_option_values(options: bytes) -> dict[str, int]:
    """MSS and window scale from a SYN's options: what the timeline needs to show real windows.

    The window field is 16 bits; on a SYN each side may announce a shift
    (RFC 7323), and once both have, every later window field is that side's
    value << shift. Without it a 64 KiB window reads as "win=502".
    """
    found: dict[str, int] = {}
    i = 0
    while i < len(options):  # each step advances at least one byte
        kind = options[i]
        if kind == 0:  # end of options
            break
        if kind == 1:  # no-op padding
            i += 1
            continue
        if i + 1 >= len(options) or options[i + 1] < 2:
            break  # a malformed length: stop rather than loop
        length = options[i + 1]
        value = options[i + 2 : i + length]
        if kind == 2 and len(value) == 2:
            found["mss"] = struct.unpack("!H", value)[0]
        elif kind == 3 and len(value) == 1:
            found["wscale"] = min(value[0], 14)  # RFC 7323: larger shifts are taken as 14
        i += length
    return found


def _ip_payload(packet: Packet, proto: int, data: bytes) -> None:
    if proto == 6 and len(data) >= 20:
        sport, dport, seq, ack, offset_flags, window = struct.unpack_from("!HHIIHH", data)
        header_len = (offset_flags >> 12) * 4
        packet.proto = "TCP"
        packet.sport, packet.dport, packet.seq, packet.ack, packet.window = sport, dport, seq, ack, window
        packet.flags = offset_flags & 0x3F
        packet.tcp_options = data[20:header_len]
        packet.payload = data[header_len:]
    elif proto == 17 and len(data) >= 8:
        sport, dport, length = struct.unpack_from("!HHH", data)
        packet.proto = "UDP"
        packet.sport, packet.dport = sport, dport
        packet.payload = data[8:length] if length >= 8 else data[8:]
    else:
        packet.proto = {1: "ICMP", 58: "ICMPv6"}.get(proto, f"IP proto {proto}")


def _ipv4(packet: Packet, data: bytes) -> None:
    if len(data) < 20:
        return
    ihl = (data[0] & 0x0F) * 4
    total_length, = struct.unpack_from("!H", data, 2)
    flags_and_offset = struct.unpack_from("!H", data, 6)[0]
    fragment_offset = flags_and_offset & 0x1FFF
    packet.more_fragments = bool(flags_and_offset & 0x2000)  # the IP "MF" flag
    packet.src = str(ipaddress.IPv4Address(data[12:16]))
    packet.dst = str(ipaddress.IPv4Address(data[16:20]))
    if fragment_offset:
        packet.proto = "IPv4 fragment"
        return
    # total_length, not len(data): Ethernet pads short frames to 60 bytes
    _ip_payload(packet, data[9], data[ihl:total_length])


def _ipv6(packet: Packet, data: bytes) -> None:
    if len(data) < 40:
        return
    payload_length, next_header = struct.unpack_from("!HB", data, 4)
    packet.src = str(ipaddress.IPv6Address(data[8:24]))
    packet.dst = str(ipaddress.IPv6Address(data[24:40]))
    rest = data[40 : 40 + payload_length]
    while next_header in IPV6_EXTENSION_HEADERS and len(rest) >= 8:
        next_header, length = rest[0], (rest[1] + 1) * 8
        rest = rest[length:]
    _ip_payload(packet, next_header, rest)


def _network(packet: Packet, ethertype: int, data: bytes) -> None:
    if ethertype == ETHERTYPE_IPV4:
        _ipv4(packet, data)
    elif ethertype == ETHERTYPE_IPV6:
        _ipv6(packet, data)
    else:
        packet.proto = {0x0806: "ARP"}.get(ethertype, f"ethertype 0x{ethertype:04x}")


def decode_frame(linktype: int, time: float, frame: bytes) -> Packet:
    packet = Packet(time)
    if linktype == LINKTYPE_ETHERNET and len(frame) >= 14:
        ethertype, offset = struct.unpack_from("!H", frame, 12)[0], 14
        while ethertype in ETHERTYPE_VLAN and len(frame) >= offset + 4:
            ethertype, offset = struct.unpack_from("!H", frame, offset + 2)[0], offset + 4
        _network(packet, ethertype, frame[offset:])
    elif linktype == LINKTYPE_LINUX_SLL and len(frame) >= 16:
        _network(packet, struct.unpack_from("!H", frame, 14)[0], frame[16:])
    elif linktype == LINKTYPE_LINUX_SLL2 and len(frame) >= 20:
        _network(packet, struct.unpack_from("!H", frame, 0)[0], frame[20:])
    elif linktype == LINKTYPE_RAW and frame:
        _network(packet, ETHERTYPE_IPV6 if frame[0] >> 4 == 6 else ETHERTYPE_IPV4, frame)
    return packet


def read_packets(stream: BinaryIO) -> Iterator[Packet]:
    header = stream.read(24)
    if len(header) < 24 or header[:4] not in _MAGIC:
        raise PcapError("not a pcap file (pcapng is not supported: write with tcpdump -w, or convert with editcap -F pcap)")
    order, unit = _MAGIC[header[:4]]
    linktype = struct.unpack(order + "I", header[20:24])[0] & 0x0FFFFFFF
    record = struct.Struct(order + "IIII")
    while True:
        head = stream.read(record.size)
        if len(head) < record.size:
            return  # a capture cut short (tcpdump killed) simply ends here
        seconds, fraction, captured, _original = record.unpack(head)
        frame = stream.read(captured)
        if len(frame) < captured:
            return
        yield decode_frame(linktype, seconds + fraction * unit, frame)


def read_pcap(path: str | Path) -> list[Packet]:
    with open(path, "rb") as stream:
        return list(read_packets(stream))
