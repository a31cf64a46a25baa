"""Wire format of the UDP exercise: one datagram is one message.

Pure code, no sockets: the client, the server's log and the tests all use it.

There is no framing to do here. UDP keeps message boundaries: one ``sendto``
is one datagram, and one ``recvfrom`` returns exactly one datagram, whole --
never half of one, never two merged (the sticky-packet problem of TCP cannot
happen). The price: a datagram may be lost, duplicated or overtaken, and
nobody tells the sender. Hence the ping format below, which carries what the
client needs to notice all three.

Echo mode sends any bytes at all (a line of text, from our client or from
``nc -u``); the server sends the same bytes back. Ping mode sends a datagram
with a fixed 16-byte header, then optional padding to reach a chosen size::

    +----------+----------------------+-------------------------------+---------
    | magic    | sequence number      | send time                     | padding
    | "PING"   | 4 bytes, big-endian  | 8 bytes, big-endian, ns       | 0 or more
    +----------+----------------------+-------------------------------+---------

The send time is the client's ``time.monotonic_ns()``. Only the client reads
it, when the echo comes back: RTT = now - send time, so the client need not
remember when it sent each ping, and the two hosts' clocks never meet.

Example exchange (``ping --count 3``, the server dropping the second one)::

    client -> server  24 bytes  PING seq=0 t=1000000  + 8 bytes of padding
    server -> client  24 bytes  the same bytes            rtt = 0.4 ms
    client -> server  24 bytes  PING seq=1 t=1500000      (server drops it)
                      ... 1 s without a reply: seq=1 timed out
    client -> server  24 bytes  PING seq=2 t=1001500000
    server -> client  24 bytes  the same bytes            rtt = 0.3 ms
    summary: 3 sent, 2 received, 1 lost

Sizes: a UDP payload over IPv4 is at most 65507 bytes (the 16-bit IP total
length, 65535, minus 20 bytes of IP header and 8 of UDP header); the kernel
refuses more with EMSGSIZE. Anything over the path MTU minus 28 (1472 bytes on
Ethernet) is cut into IP fragments and reassembled by the receiver's kernel:
still one datagram for ``recvfrom``, but losing any one fragment loses it all.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from socklab.framing import LocalProtocolError, RemoteProtocolError

MAGIC = b"PING"
HEADER = struct.Struct("!4sIQ")
MAX_SEQUENCE = 2**32 - 1

#: The biggest UDP payload: 65535 (16-bit IP length) - IP header - 8 (UDP header).
MAX_PAYLOAD_IPV4 = 65535 - 20 - 8
MAX_PAYLOAD_IPV6 = 65535 - 8  # the IPv6 payload length excludes its 40-byte header
#: IP + UDP header bytes added to each payload, for MTU arithmetic.
OVERHEAD_IPV4 = 20 + 8
OVERHEAD_IPV6 = 40 + 8

#: Padding repeats this, so a reader of the capture sees where it starts.
PAD_PATTERN = b"0123456789abcdef"


@dataclass(frozen=True)
class Ping:
    sequence: int
    sent_ns: int
    padding: int = 0  # bytes after the header

    @property
    def size(self) -> int:
        return HEADER.size + self.padding


def pad(n: int) -> bytes:
    """``n`` bytes of the recognisable padding pattern."""
    reps = n // len(PAD_PATTERN) + 1
    return (PAD_PATTERN * reps)[:n]


def encode(ping: Ping) -> bytes:
    """The datagram that carries ``ping``."""
    if not 0 <= ping.sequence <= MAX_SEQUENCE:
        raise LocalProtocolError(f"sequence number {ping.sequence} does not fit in 4 bytes")
    if not 0 <= ping.sent_ns < 2**64:
        raise LocalProtocolError(f"send time {ping.sent_ns} does not fit in 8 bytes")
    if ping.padding < 0:
        raise LocalProtocolError(f"a ping is at least {HEADER.size} bytes")
    # No upper limit here: refusing an oversized datagram is the kernel's job
    # (EMSGSIZE), and the lab wants students to see it do that.
    return HEADER.pack(MAGIC, ping.sequence, ping.sent_ns) + pad(ping.padding)


def encode_sized(sequence: int, sent_ns: int, size: int) -> bytes:
    """A ping datagram of exactly ``size`` bytes (at least the header)."""
    if size < HEADER.size:
        raise LocalProtocolError(f"a ping datagram is at least {HEADER.size} bytes, not {size}")
    return encode(Ping(sequence, sent_ns, size - HEADER.size))


def decode(datagram: bytes) -> Ping:
    """The ping in one whole datagram; RemoteProtocolError if it is not one."""
    if len(datagram) < HEADER.size:
        raise RemoteProtocolError(
            f"datagram of {len(datagram)} bytes is too short for a ping (header is {HEADER.size} bytes)")
    magic, sequence, sent_ns = HEADER.unpack_from(datagram)
    if magic != MAGIC:
        raise RemoteProtocolError(f"datagram does not start with {MAGIC!r} (got {magic!r}): not a ping")
    return Ping(sequence, sent_ns, len(datagram) - HEADER.size)


def describe(datagram: bytes, limit: int = 40) -> str:
    """One line saying what a datagram holds, for logs; never raises."""
    try:
        ping = decode(datagram)
    except RemoteProtocolError:
        pass
    else:
        return f"ping seq={ping.sequence}, {len(datagram)} bytes"
    preview = datagram[:limit]
    more = "..." if len(datagram) > limit else ""
    return f"{len(datagram)} bytes: {preview!r}{more}"
