"""Checks of the udp exercise: each datagram echoed back, unchanged, to its sender.

The contract (labs/udp/README.md, "Your own server and client"):

    python3 server.py PORT                 echo each datagram, 0 to 65507 bytes,
                                           unchanged, to the address it came from;
                                           one socket for every client; any bytes
                                           at all (an empty datagram may be echoed
                                           or ignored, but is not an end)
    python3 client.py HOST PORT MESSAGE... send each message as one datagram, in
                                           turn; print its echo, a line each; wait
                                           at least 1 s for it, then send it again,
                                           at least 3 times; ignore any datagram
                                           that is not the echo of the message
                                           being sent (a late or duplicated echo,
                                           or no echo at all); when a message gets
                                           no echo within 10 s, a message on
                                           stderr, exit 1

Every datagram is a message, whole: UDP keeps the boundaries. So the TCP
checks of partial recv (slice=), sticky messages (merge=) and the happy path
with each message alone (frames=) do not apply, nor do a connection reset or
a silent client holding the server (no connection: nothing to reset, nothing
held). What UDP does instead is lose, duplicate and reorder datagrams, without
telling anyone (the proxy's loss=, dup=, reorder=), and cut a datagram
silently to the size a recvfrom() asks for. Loss, duplicates and reordering
are the client's to handle: the echo server keeps no state, every datagram
that reaches it gets its echo.
"""

from __future__ import annotations

import socket
import time

from socklab.checks.model import (
    WAIT,
    ClientCheck,
    ClientOutcome,
    Contract,
    ServerCheck,
    Target,
    Verdict,
    failed_clearly,
    printed,
    show,
)

PORT = 9999
TRANSPORT = "udp"
CONTRACT = Contract(
    server=["python3", "{dir}/server.py", "{port}"],
    client=["python3", "{dir}/client.py", "{host}", "{port}"],
    reference_server=["python3", "-m", "socklab", "server", "udp", "--port", "{port}"],
    reference_client=["python3", "-m", "socklab", "client", "udp", "echo", "--plain", "--host", "{host}",
                      "--port", "{port}", "--timeout", "1", "--retries", "3"],
)
MAX_PAYLOAD = 65507  # over IPv4: 65535, less 20 bytes of IP header and 8 of UDP header
LARGE = 10_000  # over any small buffer (1024, 4096, 8192: socketserver's default) and the MTU
RECV = 65536  # the testers' own buffer: more than any datagram
TRY = 2.0  # a tester's wait for an echo before sending again (the network here loses nothing)


def payload(size: int) -> bytes:
    return (b"0123456789abcdef" * (size // 16 + 1))[:size]


def socket_to(target: Target) -> socket.socket:
    """A UDP socket connected to ``target``: send()/recv(), and only its datagrams come in."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(target)
    return sock


def receive(sock: socket.socket, seconds: float) -> bytes | None:
    """The next datagram, whole, or None after ``seconds``."""
    sock.settimeout(seconds)
    try:
        return sock.recv(RECV)
    except socket.timeout:
        return None


def echoed(sock: socket.socket, data: bytes, tries: int = 3) -> Verdict:
    """Send ``data``, expect it back unchanged (sent again after TRY s, ``tries`` times in all).

    An empty datagram in the way (the echo of an earlier empty one) is skipped.
    """
    got: list[bytes] = []
    for _ in range(tries):
        sock.send(data)
        deadline = time.monotonic() + TRY
        while (left := deadline - time.monotonic()) > 0:
            reply = receive(sock, left)
            if reply is None:
                break
            if reply == data:
                return Verdict.ok()
            if reply:
                got.append(reply)
    if not got:
        return Verdict.fail(f"sent {show(data)} {tries} times, no echo within {TRY:g} s")
    return Verdict.fail(f"sent {show(data)}, got back {show(got[0])}")  # show() gives the size of a long one


# --- the student's server -------------------------------------------------------


def server_basic(target: Target) -> Verdict:
    with socket_to(target) as sock:
        for data in (b"hello", b"socket lab", b"third datagram from the same socket"):
            verdict = echoed(sock, data)
            if not verdict.passed:
                return verdict
    return Verdict.ok()


def server_large_datagram(target: Target) -> Verdict:
    with socket_to(target) as sock:
        for size in (LARGE, MAX_PAYLOAD):
            verdict = echoed(sock, payload(size))
            if not verdict.passed:
                return Verdict.fail(f"a {size}-byte datagram: {verdict.why}. recvfrom(n) returns at most n bytes "
                                    f"and silently discards the rest of the datagram: ask for 65535")
    return Verdict.ok()


def server_many_clients(target: Target) -> Verdict:
    names = ("first", "second", "third")
    socks = [socket_to(target) for _ in names]
    try:
        # All three send before any reads: the server sees them interleaved.
        for name, sock in zip(names, socks):
            sock.send(f"from the {name} client".encode())
        for name, sock in zip(names, socks):
            want = f"from the {name} client".encode()
            others: list[bytes] = []
            deadline = time.monotonic() + WAIT
            while (left := deadline - time.monotonic()) > 0:
                reply = receive(sock, left)
                if reply is None or reply == want:
                    break
                others.append(reply)
            else:
                reply = None
            if reply == want and not others:
                continue
            what = (f"got {show(others[0])}, another client's echo" if others
                    else f"got nothing back within {WAIT:g} s")
            return Verdict.fail(f"three clients sent a datagram each; the {name} client {what}. One socket serves "
                                "every client: answer each datagram with sendto(data, address), the address its "
                                "recvfrom() returned, not one kept from an earlier datagram (nor connect())")
    finally:
        for sock in socks:
            sock.close()
    return Verdict.ok()


def server_empty_datagram(target: Target) -> Verdict:
    with socket_to(target) as sock:
        sock.send(b"")
        verdict = echoed(sock, b"still serving after an empty datagram")
    if verdict.passed:
        return verdict
    return Verdict.fail(f"after an empty datagram: {verdict.why}. recvfrom() returning b'' is an empty datagram, "
                        "not a client leaving (that is TCP's recv()): do not stop on it")


def server_binary_datagram(target: Target) -> Verdict:
    junk = bytes(range(256)) + b"\xff\xfe\xc3\x28 not UTF-8"
    with socket_to(target) as sock:
        verdict = echoed(sock, junk)
        if verdict.passed:
            verdict = echoed(sock, b"still serving after the bytes")
    if verdict.passed:
        return verdict
    return Verdict.fail(f"bad input, bytes that are not UTF-8: {verdict.why}. Echo the bytes as they came: "
                        "data.decode() raises UnicodeDecodeError on them, and an exception ends the server")


# --- the student's client -------------------------------------------------------


def large_judge(outcome: ClientOutcome) -> Verdict:
    verdict = printed([b"small first", payload(LARGE), payload(MAX_PAYLOAD)])(outcome)
    if verdict.passed:
        return verdict
    return Verdict.fail(f"echoes of {LARGE} and {MAX_PAYLOAD} bytes: {verdict.why}. recvfrom(n) returns at most "
                        "n bytes and silently discards the rest of the datagram: ask for 65535")


def judged(lines: list[bytes], hint: str):
    """``printed(lines)``, and a failure says the pitfall."""
    def judge(outcome: ClientOutcome) -> Verdict:
        verdict = printed(lines)(outcome)
        return verdict if verdict.passed else Verdict.fail(f"{verdict.why}: {hint}")
    return judge


def wrong_reply_judge(outcome: ClientOutcome) -> Verdict:
    if b"NOT UPPER CASE" in outcome.stdout:
        return Verdict.fail(f"the server answered b'NOT UPPER CASE' to b'not upper case', and the client printed "
                            f"it ({show(outcome.stdout)}): a datagram that is not the echo of the message sent "
                            "is not its answer: ignore it, and fail when no echo comes")
    return failed_clearly("the server echoed the first message, then answered b'NOT UPPER CASE' to "
                          "b'not upper case'", "give up after the retries", first=b"hello\n")(outcome)


class EchoFirstOnly:
    """The peers: echo the first message each client sends; answer any other as ``other`` says."""

    def __init__(self, other) -> None:
        self.other = other
        self.first: dict[tuple, bytes] = {}

    def __call__(self, sock: socket.socket, data: bytes, sender: tuple) -> None:
        first = self.first.setdefault(sender, data)
        reply = data if data == first else self.other(data)
        if reply is not None:
            sock.sendto(reply, sender)


PEERS = {
    # Answers "hello", then nothing: a server that died, or a network that lost everything.
    "silent-after-first": EchoFirstOnly(lambda data: None),
    # Answers "hello", then upper-cases: another lab's server, not an echo.
    "wrong-reply": EchoFirstOnly(lambda data: data.upper()),
}

CHECKS = [
    ServerCheck("server-basic", "the happy path: three datagrams, each echoed", server_basic),
    ServerCheck("server-large-datagram", f"{LARGE} and {MAX_PAYLOAD} bytes: recvfrom(1024) cuts a datagram silently",
                server_large_datagram),
    ServerCheck("server-many-clients", "three clients on one socket: each echo to its own sender's address",
                server_many_clients),
    ServerCheck("server-empty-datagram", "an empty datagram is not a client leaving: keep serving",
                server_empty_datagram),
    ServerCheck("server-binary-datagram", "bad input: bytes that are not text are echoed, not decoded",
                server_binary_datagram),
    ClientCheck("client-basic", "the happy path: each message one datagram, each echo printed",
                ["hello", "socket lab"], printed([b"hello", b"socket lab"])),
    ClientCheck("client-empty-message", "an empty echo is a message, not the end (as recv() == b'' is on TCP)",
                ["before", "", "after"],
                judged([b"before", b"", b"after"], "an empty datagram is a message: print its (empty) echo")),
    ClientCheck("client-loss", "datagrams lost both ways (seeded): resend after a timeout",
                ["first", "second", "third"],
                judged([b"first", b"second", b"third"], "UDP does not retransmit: when no echo comes within "
                       "the timeout, send the message again (at least 3 times)"),
                impair="loss=0.3", time_limit=30.0),
    ClientCheck("client-duplicates", "every datagram arrives twice: print each echo once",
                ["one", "two", "three"],
                judged([b"one", b"two", b"three"], "a copy of an earlier echo is not the next message's: "
                       "print a datagram only if it is the echo of the message being sent"),
                impair="dup=1"),
    ClientCheck("client-reorder", "echoes held back and overtaken: a late echo is not the next one's",
                ["one", "two", "three"],
                judged([b"one", b"two", b"three"], "an echo may come after the message was sent again, or after "
                       "the next message: keep resending, and print only the echo of the message being sent"),
                impair="reorder=1,delay=1500ms,dir=to-client", time_limit=30.0),
    ClientCheck("client-large-datagram", f"echoes of {LARGE} and {MAX_PAYLOAD} bytes: recvfrom(1024) cuts silently",
                ["small first", payload(LARGE).decode(), payload(MAX_PAYLOAD).decode()], large_judge,
                time_limit=30.0),
    ClientCheck("client-silent-server", "the server answers once, then never: give up after the retries",
                ["hello", "anybody there"],
                failed_clearly("the server echoed the first message and then nothing",
                               "without a timeout, recvfrom() waits for ever", first=b"hello\n"),
                peer="silent-after-first", time_limit=30.0),
    ClientCheck("client-wrong-reply", "bad input: a reply that is not the echo is not printed as one",
                ["hello", "not upper case"],
                wrong_reply_judge, peer="wrong-reply"),
]
