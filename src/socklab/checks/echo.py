"""Checks of the echo exercise: a line in, the line upper-cased back.

The contract (labs/echo/README.md, "Your own server and client"):

    python3 server.py PORT         answer each line with the line upper-cased
                                   (ASCII letters), many clients at once; close
                                   a client silent for 5 s; refuse a line over
                                   64 KiB (an ERROR line, or just close)
    python3 client.py HOST PORT    send each line of stdin, print each reply;
                                   exit 1 with a message on stderr when the
                                   server sends ERROR..., closes early or is
                                   silent for 10 s
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
    closes_silent_client,
    connect,
    failed_clearly,
    printed,
    recv_until,
    refuses_endless,
    show,
    vanish,
)

PORT = 7007
TRANSPORT = "tcp"
CONTRACT = Contract(
    server=["python3", "{dir}/server.py", "{port}"],
    client=["python3", "{dir}/client.py", "{host}", "{port}"],
    reference_server=["python3", "-m", "socklab", "server", "echo", "--port", "{port}", "--timeout", "5"],
    reference_client=["python3", "-m", "socklab", "client", "echo", "--host", "{host}", "--port", "{port}",
                      "--timeout", "10"],
)
LARGE = 60_000  # bytes: under the 64 KiB line limit, over any one recv or send


def line_of(size: int) -> bytes:
    return (b"abcdefghijklmnopqrstuvwxyz " * (size // 27 + 1))[:size]


def exchange(sock: socket.socket, line: bytes, timeout: float = WAIT) -> Verdict:
    """Send one line, expect it back upper-cased."""
    sent = line + b"\n"
    sock.sendall(sent)
    reply, stopped = recv_until(sock, lambda d: b"\n" in d, timeout=timeout)
    want = line.upper() + b"\n"
    if reply == want:
        return Verdict.ok()
    if stopped and not reply:
        return Verdict.fail(f"sent {show(sent)}, got no reply: {stopped}")
    return Verdict.fail(f"sent {show(sent)}, expected {show(want)}, got {show(reply)}"
                        + (f" ({stopped})" if stopped else ""))


# --- the student's server -------------------------------------------------------


def server_basic(target: Target) -> Verdict:
    with connect(target) as sock:
        for line in (b"hello", b"socket lab", b"third line on the same connection"):
            verdict = exchange(sock, line)
            if not verdict.passed:
                return verdict
    return Verdict.ok()


def server_partial_recv(target: Target) -> Verdict:
    with connect(target) as sock:
        verdict = exchange(sock, b"this line arrives one byte at a time", timeout=10)
    if verdict.passed:
        return verdict
    return Verdict.fail(f"{verdict.why}. A recv() returns what has arrived, not a line: "
                        "keep reading until the newline")


def server_sticky_lines(target: Target) -> Verdict:
    lines = [b"first", b"second", b"third"]
    want = b"".join(line.upper() + b"\n" for line in lines)
    with connect(target) as sock:
        sock.sendall(b"".join(line + b"\n" for line in lines))
        reply, stopped = recv_until(sock, lambda d: d.count(b"\n") >= 3)
    if reply == want:
        return Verdict.ok()
    return Verdict.fail(f"three lines arrived in one recv(); expected {show(want)}, got {show(reply)} "
                        f"({stopped or 'wrong bytes'}): one recv() may hold several lines: answer each, "
                        "keep what follows the last newline for the next")


def server_large_line(target: Target) -> Verdict:
    with connect(target) as sock:
        verdict = exchange(sock, line_of(LARGE), timeout=10)
    if verdict.passed:
        return verdict
    return Verdict.fail(f"a {LARGE}-byte line: {verdict.why}. send() may send less than it is given: "
                        "use sendall(), and read until the newline")


def server_client_vanishes(target: Target) -> Verdict:
    sock = connect(target)
    sock.sendall(b"half a li")
    vanish(sock)  # RST, as when a client is killed
    time.sleep(0.5)
    try:
        with connect(target) as again:
            verdict = exchange(again, b"are you still there")
    except OSError as exc:
        verdict = Verdict.fail(f"cannot connect ({exc.strerror or exc})")
    if verdict.passed:
        return verdict
    return Verdict.fail(f"after a client vanished mid-line (RST), the next client: {verdict.why}. "
                        "A vanished client is ConnectionResetError or recv() == b'': close that socket, "
                        "keep serving the others")


def server_silent_client(target: Target) -> Verdict:
    return closes_silent_client(target)


def server_concurrent_clients(target: Target) -> Verdict:
    with connect(target) as first:
        verdict = exchange(first, b"first client")
        if not verdict.passed:
            return verdict
        with connect(target) as second:
            verdict = exchange(second, b"second client, while the first is connected", timeout=3)
            if not verdict.passed:
                return Verdict.fail(f"a second client, while the first stayed connected: {verdict.why}. "
                                    "The server serves one client at a time: a thread per client, or selectors")
        return exchange(first, b"first client again")


def server_oversized_line(target: Target) -> Verdict:
    """70 000 bytes and more with no newline: refused (ERROR or close), not buffered for ever."""
    verdict = refuses_endless(target, b"x" * 70_000, "70 000 bytes and more with no newline",
                              "bound the line (64 KiB), then refuse it, or one client can take all the memory")
    if not verdict.passed:
        return verdict
    with connect(target) as again:
        verdict = exchange(again, b"still serving")
    return verdict if verdict.passed else Verdict.fail(f"after an oversized line, the next client: {verdict.why}")


# --- the student's client -------------------------------------------------------


def partial_judge(outcome: ClientOutcome) -> Verdict:
    verdict = printed([b"ONE BYTE AT A TIME"])(outcome)
    if verdict.passed:
        return verdict
    return Verdict.fail(f"the reply came one byte at a time: {verdict.why}. One recv() is not one message: "
                        "keep reading until the newline")


def error_reply(conn: socket.socket) -> None:
    """The peer ``error-reply``: a server too busy to serve, as the reference says it."""
    recv_until(conn, lambda d: b"\n" in d, limit=1 << 16)
    conn.sendall(b"ERROR busy: the server is too busy, try again later\n")


PEERS = {"error-reply": error_reply}

CHECKS = [
    ServerCheck("server-basic", "the happy path: each line alone, as the tutorials assume", server_basic,
                impair="frames=20ms"),
    ServerCheck("server-partial-recv", "a line arrives one byte at a time: one recv() is not one message",
                server_partial_recv, impair="slice=1:2ms,dir=to-server"),
    ServerCheck("server-sticky-lines", "three lines in one recv(): the sticky-packet problem",
                server_sticky_lines, impair="merge=100ms,dir=to-server"),
    ServerCheck("server-large-line", "a 60 000-byte line: send() versus sendall(), reading until the end",
                server_large_line),
    ServerCheck("server-client-vanishes", "a client killed mid-line must not kill the server",
                server_client_vanishes),
    ServerCheck("server-silent-client", "a client that says nothing is closed after a timeout",
                server_silent_client),
    ServerCheck("server-concurrent-clients", "a second client is served while the first is connected",
                server_concurrent_clients),
    ServerCheck("server-oversized-line", "bad input: a line without end is refused, not buffered for ever",
                server_oversized_line),
    ClientCheck("client-basic", "the happy path: each reply alone, as the tutorials assume", [],
                printed([b"HELLO", b"SOCKET LAB"]), impair="frames=20ms", stdin=b"hello\nsocket lab\n"),
    ClientCheck("client-partial-recv", "a reply arrives one byte at a time: one recv() is not one message", [],
                partial_judge, impair="slice=1:2ms,dir=to-client", stdin=b"one byte at a time\n"),
    ClientCheck("client-server-vanishes", "the server resets the connection mid-exchange: a clear error", [],
                failed_clearly("the connection was reset after the first reply",
                               "a reset, or a close before the newline, is an error", first=b"HELLO\n"),
                impair="reset=6,dir=to-client", stdin=b"hello\nthis line gets a reset\n"),
    ClientCheck("client-silent-server", "the server never answers: the client gives up after a timeout", [],
                failed_clearly("the server answered the first line and then nothing",
                               "without settimeout() a client waits for ever", first=b"HELLO\n"),
                impair="blackhole=6,dir=to-client", stdin=b"hello\nanybody there\n"),
    ClientCheck("client-error-reply", "bad input: the server's ERROR line is an error, not a reply", [],
                failed_clearly("the server answered ERROR busy: ...", "", also=b"busy"),
                peer="error-reply", stdin=b"hello\n"),
]
