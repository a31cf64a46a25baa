"""The UDP client: echo messages, or ping the server and count what came back.

Usage, from the client container::

    python -m socklab client udp echo hello world     # one datagram per word
    python -m socklab client udp echo                  # a udp> prompt; "exit" ends
    python -m socklab client udp echo --connect hi     # connect() + send()/recv()
    python -m socklab client udp echo --size 65508     # too big: refused, clearly
    python -m socklab client udp ping --count 20       # pinger, with a summary
    python -m socklab client udp echo --plain a b      # only the echoes on stdout

No connection is made: ``sendto(data, address)`` names the destination on
every datagram, and ``recvfrom`` says who each reply came from -- anyone can
send to our port, so replies from another address are ignored.

``--connect`` calls ``connect()`` on the UDP socket. That sends nothing (no
handshake: the capture shows no packet for it). The kernel only records a
default destination, so ``send()``/``recv()`` can replace ``sendto()``/
``recvfrom()``; it then discards datagrams from any other address, and it
reports an ICMP "port unreachable" as ConnectionRefusedError on the next
call -- an unconnected socket never hears of it and just times out.

Nothing is retransmitted by UDP. Echo mode resends a message itself when no
reply comes within ``--timeout`` (``--retries`` times); ping mode does not
resend, it counts the loss. An empty line is sent as a zero-length datagram:
legal in UDP, and ``recvfrom`` returning b'' means exactly that -- not, as on
TCP, that the peer has gone.

``--plain`` prints only each echo's bytes on stdout, a line each, and every
note and error on stderr: the contract of ``make check-udp``, which runs this
client as the reference.

Exit status: 0 all done (ping: at least one reply), 1 messages unanswered or
no ping came back, 2 the network failed, 3 a datagram was refused as too big.
``--expect-refusal`` turns 3 into 0 and anything else into 1, for a lab step.
"""

from __future__ import annotations

import argparse
import errno
import socket
import sys
import time
from typing import BinaryIO, Iterable, TextIO

from socklab import DEFAULT_PORTS
from socklab.framing import LocalProtocolError, RemoteProtocolError
from socklab.server import peer_name
from socklab.udp import protocol as p
from socklab.udp.stats import DUPLICATE, NEW, OUT_OF_ORDER, UNEXPECTED, PingStats

#: Receive buffer: bigger than any datagram, so that none is silently cut.
RECV_SIZE = 65536

# Linux values, absent from Python's socket module: with IP_PMTUDISC_DO the
# kernel sets Don't Fragment and refuses (EMSGSIZE) what exceeds the path MTU,
# instead of cutting it into fragments.
IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
IP_PMTUDISC_DO = getattr(socket, "IP_PMTUDISC_DO", 2)
IP_MTU = getattr(socket, "IP_MTU", 14)
IPV6_MTU_DISCOVER = getattr(socket, "IPV6_MTU_DISCOVER", 23)
IPV6_PMTUDISC_DO = getattr(socket, "IPV6_PMTUDISC_DO", 2)
IPV6_MTU = getattr(socket, "IPV6_MTU", 24)

EXIT_OK, EXIT_UNANSWERED, EXIT_NETWORK, EXIT_TOO_BIG = 0, 1, 2, 3


class DatagramTooBig(OSError):
    """The kernel refused to send a datagram (EMSGSIZE); the message says why."""


class UdpEndpoint:
    """One UDP socket aimed at the server, connected or not."""

    def __init__(self, host: str, port: int, connect: bool = False, dont_fragment: bool = False) -> None:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        self.server = address
        self.connected = connect
        self.dont_fragment = dont_fragment
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if dont_fragment and family == socket.AF_INET6:
                self.sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO)
            elif dont_fragment:
                self.sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
            if connect:
                self.sock.connect(address)  # nothing goes on the wire
        except OSError:
            self.sock.close()
            raise

    def __enter__(self) -> UdpEndpoint:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.sock.close()

    @property
    def name(self) -> str:
        return peer_name(self.server)

    def send(self, data: bytes) -> None:
        try:
            if self.connected:
                self.sock.send(data)
            else:
                self.sock.sendto(data, self.server)
        except OSError as exc:
            if exc.errno == errno.EMSGSIZE:
                raise DatagramTooBig(errno.EMSGSIZE, self.explain_too_big(len(data))) from None
            raise

    def receive(self, timeout: float) -> tuple[bytes, bool] | None:
        """The next datagram and whether the server sent it; None after ``timeout`` s.

        A timeout of 0 only takes what is already queued.
        """
        self.sock.settimeout(timeout if timeout > 0 else 0.0)
        try:
            if self.connected:
                return self.sock.recv(RECV_SIZE), True  # the kernel already filtered
            data, sender = self.sock.recvfrom(RECV_SIZE)
        except (socket.timeout, BlockingIOError):
            return None
        return data, tuple(sender[:2]) == tuple(self.server[:2])

    def path_mtu(self) -> int | None:
        """The kernel's idea of the MTU towards the server (Linux), or None."""
        # IP_MTU can only be read from a connected socket; connecting a spare
        # UDP socket costs nothing on the wire.
        try:
            with socket.socket(self.sock.family, socket.SOCK_DGRAM) as probe:
                probe.connect(self.server)
                if probe.family == socket.AF_INET6:
                    return probe.getsockopt(socket.IPPROTO_IPV6, IPV6_MTU)
                return probe.getsockopt(socket.IPPROTO_IP, IP_MTU)
        except OSError:
            return None

    def explain_too_big(self, size: int) -> str:
        v6 = self.sock.family == socket.AF_INET6
        limit = p.MAX_PAYLOAD_IPV6 if v6 else p.MAX_PAYLOAD_IPV4
        if size > limit:
            return (f"a {size}-byte datagram was refused by the kernel (EMSGSIZE): a UDP datagram over "
                    f"{'IPv6' if v6 else 'IPv4'} carries at most {limit} bytes -- the IP length field is "
                    f"16 bits (65535), less the IP and UDP headers. Nothing was sent.")
        mtu = self.path_mtu()
        overhead = p.OVERHEAD_IPV6 if v6 else p.OVERHEAD_IPV4
        fits = f"{mtu} bytes, so at most {mtu - overhead} bytes of UDP payload" if mtu else "unknown"
        return (f"a {size}-byte datagram was refused by the kernel (EMSGSIZE): it does not fit in one IP packet "
                f"(path MTU: {fits}) and Don't Fragment is set (--dont-fragment), so IP may not split it. "
                f"Nothing was sent.")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def echo(endpoint: UdpEndpoint, messages: Iterable[bytes], timeout: float, retries: int,
         out: TextIO | None = None, replies: BinaryIO | None = None) -> int:
    """Send each message and wait for its echo; returns how many got none.

    With ``replies``, each echo's bytes go there, a line each (``--plain``),
    and ``out`` only gets the notes.
    """
    out = out or sys.stdout
    unanswered = 0
    for message in messages:
        for attempt in range(retries + 1):
            started = time.monotonic()
            endpoint.send(message)
            if _await_echo(endpoint, message, started, timeout, out):
                if replies is not None:
                    replies.write(message + b"\n")  # the echo: the same bytes, checked by _await_echo
                    replies.flush()
                break
            more = f": sending it again ({attempt + 1}/{retries})" if attempt < retries else ""
            print(f"no reply within {timeout:g} s (lost: UDP does not retransmit){more}", file=out)
        else:
            unanswered += 1
            hint = "" if endpoint.connected else " (if nobody listens there, only a connected socket is told: try --connect)"
            print(f"gave up on {p.describe(message)} after {retries + 1} tries{hint}", file=out)
    return unanswered


def _await_echo(endpoint: UdpEndpoint, message: bytes, started: float, timeout: float, out: TextIO) -> bool:
    deadline = started + timeout
    while (left := deadline - time.monotonic()) > 0:
        got = endpoint.receive(left)
        if got is None:
            break
        data, from_server = got
        if not from_server:
            print(f"ignored a datagram that did not come from {endpoint.name}", file=out)
        elif data != message:
            # An echo of an earlier message that had been given up on, or a
            # copy of one: without sequence numbers, equality is the only check.
            print(f"ignored a stray reply ({p.describe(data)}): late or duplicated", file=out)
        else:
            rtt = time.monotonic() - started
            print(f"reply from {endpoint.name}: {p.describe(data)}, rtt {_ms(rtt)}", file=out)
            return True
    return False


def ping(endpoint: UdpEndpoint, count: int, timeout: float, size: int = p.HEADER.size,
         interval: float = 0.0, out: TextIO | None = None) -> PingStats:
    """Send ``count`` pings, one at a time, each waited for up to ``timeout`` s."""
    out = out or sys.stdout
    p.encode_sized(0, 0, size)  # a size too small for the header fails here, before anything is sent
    stats = PingStats()
    print(f"PING {endpoint.name}: {count} pings of {size} bytes, timeout {timeout:g} s", file=out)
    for _ in range(count):
        sequence = stats.on_sent()
        started = time.monotonic()
        endpoint.send(p.encode_sized(sequence, time.monotonic_ns(), size))
        deadline = started + timeout
        answered = False
        while not answered and (left := deadline - time.monotonic()) > 0:
            answered = _take_reply(endpoint, stats, left, sequence, out)
        if not answered:
            print(f"seq={sequence}: request timed out (no reply within {timeout:g} s)", file=out)
        if interval > 0:
            time.sleep(interval)
    # Replies already queued (late ones) still count: take them without waiting.
    while _take_reply(endpoint, stats, 0, None, out) is not None:
        pass
    return stats


def _take_reply(endpoint: UdpEndpoint, stats: PingStats, wait: float, awaited: int | None,
                out: TextIO) -> bool | None:
    """Account for one datagram; True if it answered ``awaited``, None if none came."""
    got = endpoint.receive(wait)
    if got is None:
        return None
    data, from_server = got
    if not from_server:
        print(f"ignored a datagram that did not come from {endpoint.name}", file=out)
        return False
    try:
        reply = p.decode(data)
    except RemoteProtocolError as exc:
        stats.on_garbage()
        print(f"ignored a reply that is not a ping: {exc}", file=out)
        return False
    rtt = (time.monotonic_ns() - reply.sent_ns) / 1e9
    verdict = stats.on_reply(reply.sequence, rtt)
    note = {NEW: "", OUT_OF_ORDER: " (out of order)", DUPLICATE: " (DUPLICATE, not counted)",
            UNEXPECTED: " (UNEXPECTED: never sent)"}[verdict]
    # Late: it came after its own wait was over (while awaiting a later ping, or drained at the end).
    late = " (late)" if verdict in (NEW, OUT_OF_ORDER) and reply.sequence != awaited else ""
    print(f"seq={reply.sequence}: {len(data)} bytes from {endpoint.name}, rtt {_ms(rtt)}{note}{late}", file=out)
    return reply.sequence == awaited and verdict in (NEW, OUT_OF_ORDER)


def _messages(args: argparse.Namespace) -> Iterable[bytes]:
    """The datagrams echo mode sends; stops at "exit"."""
    if args.size is not None:
        if args.size < 0:
            raise LocalProtocolError(f"--size must be 0 or more, not {args.size}")
        yield p.pad(args.size)
        return
    if args.messages:
        lines: Iterable[str] = args.messages
    elif sys.stdin.isatty():
        def prompt() -> Iterable[str]:
            while True:
                try:
                    yield input("udp> ")
                except EOFError:
                    return
        lines = prompt()
    else:
        lines = (line.rstrip("\n") for line in sys.stdin)
    for line in lines:
        if line.strip().lower() == "exit":
            return
        yield line.encode()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--host", default="server", help="server name or address (default: %(default)s)")
    common.add_argument("--port", type=int, default=DEFAULT_PORTS["udp"], help="UDP port (default: %(default)s)")
    common.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for each reply (default: %(default)s)")
    common.add_argument("--connect", action="store_true", help="connect() the socket, then send()/recv()")
    common.add_argument("--size", type=int, default=None,
                        help="bytes per datagram (echo: send one datagram of this size instead of messages; "
                             "ping: default 16)")
    common.add_argument("--dont-fragment", action="store_true",
                        help="set Don't Fragment (IP_PMTUDISC_DO): over the path MTU, refuse instead of fragmenting")
    common.add_argument("--expect-refusal", action="store_true",
                        help="succeed only if the kernel refuses the datagram as too big (for a lab step)")
    common.add_argument("--plain", action="store_true",
                        help="echo: print only each echo's bytes on stdout, a line each; notes on stderr")
    modes = parser.add_subparsers(dest="mode", required=True, metavar="MODE")
    echo = modes.add_parser("echo", parents=[common], help="send messages, print their echoes; 'exit' ends",
                            description="Send messages, one datagram each, and print their echoes.")
    echo.add_argument("messages", nargs="*", help="messages to send (none: read lines, 'exit' ends)")
    echo.add_argument("--retries", type=int, default=3,
                      help="times to resend a message that got no reply (default: %(default)s)")
    ping = modes.add_parser("ping", parents=[common], help="ping the server, then summarize loss and RTT",
                            description="Send numbered, timestamped pings; summarize loss, duplicates, order, RTT.")
    ping.add_argument("--count", type=int, default=10, help="how many pings (default: %(default)s)")
    ping.add_argument("--interval", type=float, default=0.0, help="pause between pings, s (default: none)")


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    with UdpEndpoint(args.host, args.port, args.connect, args.dont_fragment) as endpoint:
        if args.mode == "ping":
            stats = ping(endpoint, args.count, args.timeout, args.size or p.HEADER.size, args.interval, out)
            print(stats.report(endpoint.name), file=out)
            return EXIT_OK if stats.received else EXIT_UNANSWERED
        replies = sys.stdout.buffer if args.plain else None
        unanswered = echo(endpoint, _messages(args), args.timeout, args.retries, out, replies)
        return EXIT_UNANSWERED if unanswered else EXIT_OK


def main(args: argparse.Namespace, out: TextIO | None = None) -> int:
    # looked up now, not at import: tests and the CLI may swap it
    out = out or (sys.stderr if args.plain else sys.stdout)
    status = _main(args, out)
    if args.expect_refusal:
        if status == EXIT_TOO_BIG:
            print("refused, as expected", file=out)
            return EXIT_OK
        print("error: the datagram was expected to be refused as too big, and was not", file=sys.stderr)
        return EXIT_UNANSWERED
    return status


def _main(args: argparse.Namespace, out: TextIO) -> int:
    target = peer_name((args.host, args.port))
    try:
        return run(args, out)
    except DatagramTooBig as exc:
        print(f"error: {exc.strerror}", file=out)
        return EXIT_TOO_BIG
    except ConnectionRefusedError:
        print(f"error: nobody is listening on {target}: the kernel got an ICMP port unreachable "
              f"(a connected UDP socket hears of it; an unconnected one only times out)", file=sys.stderr)
        return EXIT_NETWORK
    except LocalProtocolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NETWORK
    except socket.gaierror as exc:
        print(f"error: cannot resolve {args.host}: {exc.strerror}", file=sys.stderr)
        return EXIT_NETWORK
    except OSError as exc:
        print(f"error: {target}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_NETWORK
