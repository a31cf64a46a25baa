"""Checks of the shell exercise: command lines in, output and exit status back (half an SSH).

The student writes the ``length`` framing (socklab.shell.protocol): a reply is
a 20-byte header (``!IIiII``: stdout bytes, stderr bytes, exit status, flags,
elapsed ms), then stdout, then stderr. The contract (labs/shell/README.md,
"Your own server and client"):

    python3 server.py PORT         many clients at once; a first line
                                   ``framing length`` is accepted (and may be
                                   ignored: it is the default); each other
                                   line is a command, run with ``sh -c``
                                   (stdin /dev/null), killed with its process
                                   group after 3 s (flag 2), its output cut at
                                   1 MiB (flag 1); a line that is not UTF-8,
                                   empty or over 64 KiB is refused (flag 4:
                                   or, over 64 KiB, just close); a client
                                   silent for 5 s is closed
    python3 client.py HOST PORT    sends ``framing length``, then each non-
                                   empty line of stdin as a command; prints
                                   stdout and stderr where they belong; exits
                                   with the last command's status (128+N when
                                   killed by signal N); a connection closed or
                                   reset early, no reply for 10 s, or a reply
                                   claiming over 64 MiB: a message on stderr
                                   and a non-zero status (255, as ssh)

The reference server's ``--run-as nobody`` needs SETUID, SETGID and KILL
(``reference_caps``); the student's server runs as nobody already.

Client checks that need the reply cut as the tutorials' network cuts it
(the length or header alone, then the output) and a failure after it use a
PEER that writes them with a pause between: the proxy cannot combine
``frames=`` with ``reset=`` or ``blackhole=``. The large reply comes from a
peer too: ``frames=`` cuts a byte at a time, too slow for a megabyte. The
peers speak the naive framing too, so that the tutorials' client (a known-bad
solution) fails only the check aimed at it.

Not checked: the naive and ack framings (the student writes only the length
framing), and a command's process group surviving the kill (the tester sees
the reply, not the server's processes).
"""

from __future__ import annotations

import socket
import struct
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

PORT = 2222
TRANSPORT = "tcp"
TIME_LIMIT = 3.0  # the contract's: a command is killed after this
MAX_OUTPUT = 1 << 20  # the contract's cap on stdout + stderr
IDLE_LIMIT = 5.0  # the contract's: a silent client is closed after this
CLIENT_TIMEOUT = 10.0  # the contract's: the client gives up on a silent server after this
CONTRACT = Contract(
    server=["python3", "{dir}/server.py", "{port}"],
    client=["python3", "{dir}/client.py", "{host}", "{port}"],
    reference_server=["python3", "-m", "socklab", "server", "shell", "--port", "{port}", "--time-limit", "3",
                      "--max-output", "1MiB", "--timeout", "5"],
    reference_client=["python3", "-m", "socklab", "client", "shell", "--host", "{host}", "--port", "{port}",
                      "--framing", "length", "--timeout", "10"],
    # the reference runs each command as nobody: switching user, and killing that user's processes
    reference_caps=("SETUID", "SETGID", "KILL"),
)

HEADER = struct.Struct("!IIiII")  # as socklab.shell.protocol.HEADER (the tester needs no more of it)
TRUNCATED, TIMED_OUT, REFUSED = 1, 2, 4
HELLO = b"framing length\n"
#: Between the parts of a reply where the tutorials' network keeps them apart (frames=, the peers):
#: long enough that a client woken late on a loaded machine still reads the first part alone.
PAUSE = 0.1
LARGE = 1_000_000  # bytes of output: under the 1 MiB cap, over any one recv or send
LARGE_COMMAND = f"yes abcdefghijklmnopqrstuvwxyz | head -c {LARGE}"


def large_output() -> bytes:
    return (b"abcdefghijklmnopqrstuvwxyz\n" * (LARGE // 27 + 1))[:LARGE]


class Reply:
    """One reply of the length framing, as the tester read it."""

    def __init__(self, data: bytes) -> None:
        self.out_len, self.err_len, self.status, self.flags, self.elapsed = HEADER.unpack_from(data)
        body = data[HEADER.size:]
        self.stdout, self.stderr = body[: self.out_len], body[self.out_len:]

    def __str__(self) -> str:
        return (f"out={self.out_len} err={self.err_len} status={self.status} flags={self.flags} "
                f"stdout={show(self.stdout, 40)} stderr={show(self.stderr, 40)}")


def _complete(data: bytes) -> bool:
    if len(data) < HEADER.size:
        return False
    out_len, err_len = HEADER.unpack_from(data)[:2]
    return len(data) >= HEADER.size + out_len + err_len or out_len + err_len > 4 * MAX_OUTPUT


def read_reply(sock: socket.socket, timeout: float = WAIT, header_only: bool = False) -> tuple[Reply | None, str]:
    """One reply (or its header only), or None and why not."""
    done = (lambda d: len(d) >= HEADER.size) if header_only else _complete
    data, stopped = recv_until(sock, done, limit=4 * MAX_OUTPUT, timeout=timeout)
    if len(data) < HEADER.size:
        got = f"{len(data)} bytes of the 20-byte header ({show(data, 24)})" if data else "no reply"
        return None, f"{got}: {stopped}"
    reply = Reply(data)
    if reply.out_len + reply.err_len > 4 * MAX_OUTPUT:
        return None, f"a header claiming {reply.out_len + reply.err_len} bytes of output (over the 1 MiB cap)"
    if not header_only and len(data) < HEADER.size + reply.out_len + reply.err_len:
        return None, (f"the header announced {reply.out_len}+{reply.err_len} bytes of stdout+stderr, "
                      f"{len(data) - HEADER.size} came: {stopped}")
    if len(data) > HEADER.size + reply.out_len + reply.err_len and not header_only:
        return None, f"{len(data) - HEADER.size - reply.out_len - reply.err_len} bytes more than the header announced"
    return reply, ""


def exchange(sock: socket.socket, command: bytes, stdout: bytes, stderr: bytes = b"", status: int = 0,
             timeout: float = WAIT) -> Verdict:
    """Send one command; expect exactly this reply (flags 0)."""
    sock.sendall(command + b"\n")
    reply, why = read_reply(sock, timeout)
    sent = show(command, 40)
    if reply is None:
        return Verdict.fail(f"sent {sent}, got {why}")
    want = (len(stdout), len(stderr), status, 0, stdout, stderr)
    got = (reply.out_len, reply.err_len, reply.status, reply.flags, reply.stdout, reply.stderr)
    if got != want:
        return Verdict.fail(f"sent {sent}, expected out={len(stdout)} err={len(stderr)} status={status} flags=0 "
                            f"stdout={show(stdout, 40)} stderr={show(stderr, 40)}, got {reply}")
    return Verdict.ok()


def still_serving(target: Target, after: str) -> Verdict:
    """A new client gets a normal reply: the server survived ``after``."""
    try:
        with connect(target) as sock:
            verdict = exchange(sock, b"echo still serving", b"still serving\n")
    except OSError as exc:
        verdict = Verdict.fail(f"cannot connect ({exc.strerror or exc})")
    return verdict if verdict.passed else Verdict.fail(f"after {after}, the next client: {verdict.why}")


# --- the student's server -------------------------------------------------------


def server_basic(target: Target) -> Verdict:
    with connect(target) as sock:
        sock.sendall(HELLO)
        for command, stdout, stderr, status in (
                (b"echo hello", b"hello\n", b"", 0),
                ("printf 'héllo wörld\\n'; echo oops >&2; exit 3".encode(), "héllo wörld\n".encode(), b"oops\n", 3)):
            verdict = exchange(sock, command, stdout, stderr, status)
            if not verdict.passed:
                return Verdict.fail(f"{verdict.why} (lengths are bytes of stdout and stderr, not characters; "
                                    "the status is the command's exit status)")
    return Verdict.ok()


def server_partial_recv(target: Target) -> Verdict:
    with connect(target) as sock:  # no "framing length" line: the default framing
        verdict = exchange(sock, b"echo one byte at a time", b"one byte at a time\n", timeout=10)
    if verdict.passed:
        return verdict
    return Verdict.fail(f"{verdict.why}. A recv() returns what has arrived, not a line: "
                        "keep reading until the newline")


def complete_replies(data: bytes) -> list[Reply]:
    """The whole replies at the start of ``data``, in order."""
    replies, start = [], 0
    while len(data) - start >= HEADER.size:
        out_len, err_len = HEADER.unpack_from(data, start)[:2]
        end = start + HEADER.size + out_len + err_len
        if end > len(data) or out_len + err_len > 4 * MAX_OUTPUT:
            break
        replies.append(Reply(data[start:end]))
        start = end
    return replies


def server_sticky_commands(target: Target) -> Verdict:
    words = (b"first", b"second", b"third")
    with connect(target) as sock:
        sock.sendall(HELLO + b"echo first\necho second\necho third\n")
        data, stopped = recv_until(sock, lambda d: len(complete_replies(d)) >= len(words), limit=1 << 16)
        replies = complete_replies(data)
        for i, word in enumerate(words):
            if i >= len(replies) or replies[i].stdout != word + b"\n":
                got = str(replies[i]) if i < len(replies) else f"none ({stopped or 'wrong bytes'})"
                return Verdict.fail(f"'framing length' and three commands arrived in one recv(); the reply to "
                                    f"'echo {word.decode()}': {got}. One recv() may hold several lines: "
                                    "run each, keep what follows the last newline for the next")
    return Verdict.ok()


def server_large_output(target: Target) -> Verdict:
    with connect(target) as sock:
        verdict = exchange(sock, LARGE_COMMAND.encode(), large_output(), timeout=15)
    if verdict.passed:
        return verdict
    return Verdict.fail(f"a command printing {LARGE} bytes: {verdict.why}. send() may send less than it is "
                        "given: use sendall(); and read the command's output until it ends")


def server_client_vanishes(target: Target) -> Verdict:
    sock = connect(target)
    sock.sendall(b"echo half a comm")
    vanish(sock)  # RST mid-line, as when a client is killed
    sock = connect(target)
    sock.sendall(b"sleep 1; echo nobody reads this\n")
    vanish(sock)  # gone before its reply: the server's sendall() fails
    time.sleep(2)
    verdict = still_serving(target, "a client vanished mid-line and another before its reply (RST)")
    if verdict.passed:
        return verdict
    return Verdict.fail(f"{verdict.why}. A vanished client is ConnectionResetError, BrokenPipeError or "
                        "recv() == b'': close that socket, keep serving the others")


def server_silent_client(target: Target) -> Verdict:
    return closes_silent_client(target, idle_limit=IDLE_LIMIT)


def server_concurrent_clients(target: Target) -> Verdict:
    with connect(target) as first:
        verdict = exchange(first, b"echo first client", b"first client\n")
        if not verdict.passed:
            return verdict
        with connect(target) as second:
            verdict = exchange(second, b"echo second client", b"second client\n", timeout=8)
            if not verdict.passed:
                return Verdict.fail(f"a second client, while the first stayed connected: {verdict.why}. "
                                    "The server serves one client at a time: a thread per client, or selectors")
        return exchange(first, b"echo first client again", b"first client again\n")


def server_oversized_command(target: Target) -> Verdict:
    """70 000 bytes and more with no newline: refused (flag 4, or a close), not buffered for ever."""
    verdict = refuses_endless(target, b"echo " + b"x" * 70_000, "70 000 bytes and more with no newline",
                              "bound the command line (64 KiB), then refuse it, or one client can take all the memory")
    return still_serving(target, "an oversized command line") if verdict.passed else verdict


def server_invalid_utf8(target: Target) -> Verdict:
    with connect(target) as sock:
        sock.sendall(b"echo \xff\xfe not utf-8\n")
        reply, why = read_reply(sock)
        if reply is None:
            return Verdict.fail(f"a command line that is not UTF-8 got {why}: decoding it raised, and the "
                                "connection died; refuse it (flag 4) and go on with the next line")
        verdict = exchange(sock, b"echo still here", b"still here\n")
    if verdict.passed:
        return verdict
    return Verdict.fail(f"after a command line that is not UTF-8, on the same connection: {verdict.why}")


def server_endless_output(target: Target) -> Verdict:
    with connect(target) as sock:
        sock.sendall(b"yes\n")
        reply, why = read_reply(sock, timeout=15, header_only=True)
    if reply is None:
        return Verdict.fail(f"'yes' prints for ever; got {why}: read the output up to the cap "
                            f"({MAX_OUTPUT} bytes), then kill the command and reply with flag 1 (truncated)")
    if not reply.flags & TRUNCATED or reply.out_len + reply.err_len > MAX_OUTPUT:
        return Verdict.fail(f"'yes' prints for ever; the reply's header: {reply}: expected flag 1 (truncated) "
                            f"and at most {MAX_OUTPUT} bytes of output")
    return still_serving(target, "a command that printed for ever")


def server_time_limit(target: Target) -> Verdict:
    wait = TIME_LIMIT + 5
    with connect(target) as sock:
        # The pipe's `cat` holds the output open: killing only `sh` is not enough.
        sock.sendall(b"echo started; sleep 30 | cat\n")
        reply, why = read_reply(sock, timeout=wait)
    if reply is None or not reply.flags & TIMED_OUT:
        got = why if reply is None else f"a reply without flag 2: {reply}"
        return Verdict.fail(f"'sleep 30 | cat' runs past the {TIME_LIMIT:g}-s limit; within {wait:g} s: {got}. "
                            "Kill the command's whole process group (start_new_session, os.killpg) at the "
                            "limit and reply with flag 2 (timed out)")
    return still_serving(target, "a command killed at the time limit")


# --- the student's client -------------------------------------------------------


def partial_judge(outcome: ClientOutcome) -> Verdict:
    verdict = printed([b"one byte"])(outcome)
    if verdict.passed:
        return verdict
    return Verdict.fail(f"the reply came one byte at a time: {verdict.why}. One recv() is not one message: "
                        "read the 20-byte header until you have it all, then the output")


def sticky_judge(outcome: ClientOutcome) -> Verdict:
    if outcome.stdout == b"out\n" and b"err\n" in outcome.stderr and outcome.status == 3:
        return Verdict.ok()
    got = (f"stdout {show(outcome.stdout)}, exit status {outcome.status}" if outcome.status is not None
           else f"stdout {show(outcome.stdout)}, still running at the time limit")
    return Verdict.fail(f"header, stdout and stderr arrived in one recv(); expected stdout 'out\\n', 'err' on "
                        f"stderr and exit status 3, got {got} ({outcome.said()}): take exactly the header's "
                        "lengths from what arrived, and keep the rest for what follows")


def large_judge(outcome: ClientOutcome) -> Verdict:
    want = large_output()
    if outcome.stdout == want and outcome.status == 0:
        return Verdict.ok()
    if outcome.status is None:
        ended = "the client was still running at the time limit"
    else:
        ended = f"it exited {outcome.status} ({outcome.said()})"
    return Verdict.fail(f"a {LARGE}-byte output: {len(outcome.stdout)} bytes printed"
                        f"{', not the ones sent' if len(outcome.stdout) == LARGE else ''}, and {ended}. "
                        "recv() returns at most what has arrived: loop until you have the header's length")


def _read_line(conn: socket.socket, buffer: bytearray) -> bytes | None:
    if b"\n" not in buffer:
        data, _ = recv_until(conn, lambda d: b"\n" in d, limit=1 << 16)
        buffer += data
    if b"\n" not in buffer:
        return None
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line


def _first_command(conn: socket.socket, buffer: bytearray) -> str | None:
    """Reads the optional framing line and the first command: the framing asked for, or None."""
    line = _read_line(conn, buffer)
    framing = "length"
    if line is not None and line.startswith(b"framing "):
        framing = line.split(b" ", 1)[1].decode(errors="replace").strip()
        line = _read_line(conn, buffer)
    return None if line is None else framing


def _reply(conn: socket.socket, framing: str, output: bytes) -> None:
    """A reply written the tutorials' way: the header (or the naive length) alone, then the output."""
    conn.sendall(HEADER.pack(len(output), 0, 0, 0, 1) if framing == "length" else str(len(output)).encode())
    time.sleep(PAUSE)
    conn.sendall(output)


def _peer(conn: socket.socket, second) -> None:
    """A server for the client checks: answers the first command with b"first\\n", then calls
    ``second(conn, framing)`` when the second command has come."""
    buffer = bytearray()
    framing = _first_command(conn, buffer)
    if framing is not None:
        _reply(conn, framing, b"first\n")
        if _read_line(conn, buffer) is not None:
            second(conn, framing)


def large(conn: socket.socket) -> None:
    """The peer ``large``: a well-behaved server whose reply is 1 000 000 bytes of output.

    Not the reference server behind frames= (the proxy cuts a byte at a time:
    a minute for a megabyte on a loaded machine), and the length comes alone,
    as from the tutorials' server, so that only the client's recv() loop is tested.
    """
    framing = _first_command(conn, bytearray())
    if framing is not None:
        _reply(conn, framing, large_output())
        time.sleep(1)  # let the client read before the close


def vanishes(conn: socket.socket) -> None:
    """The peer ``vanishes``: the second reply stops after its first 1000 bytes of output, with a reset."""
    def second(conn: socket.socket, framing: str) -> None:
        conn.sendall(HEADER.pack(100_000, 0, 0, 0, 1) if framing == "length" else b"100000")
        time.sleep(PAUSE)
        conn.sendall(b"x" * 1000)
        time.sleep(0.2)
        vanish(conn)
    _peer(conn, second)


def silent(conn: socket.socket) -> None:
    """The peer ``silent``: never answers the second command, and keeps the connection open."""
    _peer(conn, lambda conn, framing: time.sleep(30))


def oversized_reply(conn: socket.socket) -> None:
    """The peer ``oversized-reply``: the second reply claims 4 GiB, then trickles bytes for ever."""
    def second(conn: socket.socket, framing: str) -> None:
        conn.sendall(HEADER.pack(0xFFFFFFFF, 0, 0, 0, 1) if framing == "length" else b"4294967295")
        for _ in range(300):  # 30 s: longer than the check; the trickle keeps a client's timeout from firing
            time.sleep(0.1)
            conn.sendall(b"x" * 1024)
    _peer(conn, second)


PEERS = {"large": large, "vanishes": vanishes, "silent": silent, "oversized-reply": oversized_reply}

TWO = b"echo first\necho second\n"

CHECKS = [
    ServerCheck("server-basic", "the happy path: each command alone; stdout, stderr, status and byte lengths",
                server_basic, impair="frames=20ms"),
    ServerCheck("server-partial-recv", "a command arrives one byte at a time: one recv() is not one line",
                server_partial_recv, impair="slice=1:2ms,dir=to-server"),
    ServerCheck("server-sticky-commands", "the framing line and three commands in one recv(): sticky packets",
                server_sticky_commands, impair="merge=100ms,dir=to-server"),
    ServerCheck("server-large-output", f"a {LARGE}-byte output: send() versus sendall()", server_large_output),
    ServerCheck("server-client-vanishes", "a client killed mid-line or before its reply must not kill the server",
                server_client_vanishes),
    ServerCheck("server-silent-client", "a client that says nothing is closed after a timeout",
                server_silent_client),
    ServerCheck("server-concurrent-clients", "a second client is served while the first is connected",
                server_concurrent_clients),
    ServerCheck("server-oversized-command", "bad input: a command line without end is refused, not buffered",
                server_oversized_command),
    ServerCheck("server-invalid-utf8", "bad input: a command line that is not UTF-8 is refused, the client served",
                server_invalid_utf8),
    ServerCheck("server-endless-output", "bad input: a command that prints for ever is cut at the cap",
                server_endless_output),
    ServerCheck("server-time-limit", "bad input: a command that runs for ever is killed, its whole group",
                server_time_limit),
    ClientCheck("client-basic", "the happy path: the header alone, then the output, as the tutorials assume", [],
                printed([b"hello", "héllo wörld".encode()]), impair="frames=100ms",
                stdin="echo hello\necho 'héllo wörld'\n".encode()),
    ClientCheck("client-partial-recv", "a reply arrives one byte at a time: one recv() is not one message", [],
                partial_judge, impair="slice=1:20ms,dir=to-client", stdin=b"echo one byte\n"),
    ClientCheck("client-sticky-reply", "header, stdout and stderr in one recv(): the sticky-packet problem", [],
                sticky_judge, impair="merge=100ms,dir=to-client", stdin=b"echo out; echo err >&2; exit 3\n"),
    ClientCheck("client-large-output", f"a {LARGE}-byte reply: recv() until the header's length", [],
                large_judge, peer="large", stdin=f"{LARGE_COMMAND}\n".encode(), time_limit=30),
    ClientCheck("client-server-vanishes", "the server resets the connection mid-reply: a clear error", [],
                failed_clearly("the connection was reset in the middle of the second reply",
                               "a reset, or a close before the header's length, is an error", first=b"first\n"),
                peer="vanishes", stdin=TWO),
    ClientCheck("client-silent-server", "the server never answers: the client gives up after a timeout", [],
                failed_clearly("the server answered the first command and then nothing",
                               f"without settimeout({CLIENT_TIMEOUT:g}) a client waits for ever", first=b"first\n"),
                peer="silent", stdin=TWO, time_limit=25),
    ClientCheck("client-oversized-reply", "bad input: a header claiming 4 GiB is refused, not believed", [],
                failed_clearly("the second reply's header claimed 4 GiB of output",
                               "check the lengths against a limit (64 MiB) before reading", first=b"first\n"),
                peer="oversized-reply", stdin=TWO, time_limit=25),
]
