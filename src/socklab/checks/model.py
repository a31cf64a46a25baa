"""What a check is, what it finds, and the bounded socket calls the testers are made of.

Pure data and stdlib sockets: the host imports it to run the checks, and the
tester and peer programs import it inside the containers.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Callable, Union

Target = tuple[str, int]
#: Every wait of a tester: long enough for a slow container, short enough that a failing check ends.
WAIT = 5.0


@dataclass(frozen=True)
class Verdict:
    passed: bool
    why: str = ""  # for a failure: one sentence a student can act on

    @classmethod
    def ok(cls, note: str = "") -> Verdict:
        return cls(True, note)

    @classmethod
    def fail(cls, why: str) -> Verdict:
        return cls(False, why)


@dataclass(frozen=True)
class Contract:
    """How programs are started: argv templates; {host}, {port} and {root} are filled in.

    ``server`` and ``client`` are run from the solution's folder; the
    reference ones are socklab's own, run the same way, so that
    ``SOLUTION=reference`` goes through exactly the same checks.
    """

    server: list[str]
    client: list[str]
    reference_server: list[str]
    reference_client: list[str]
    server_setup: str = ""  # shell, in the server container before the server starts (e.g. files to serve)
    reference_caps: tuple[str, ...] = ()  # capabilities the reference server needs (e.g. to run commands as nobody)


@dataclass(frozen=True)
class ServerCheck:
    """The student's server, driven by ``drive(target)`` in the tester container."""

    name: str
    pitfall: str
    drive: Callable[[Target], Verdict]
    impair: str = ""  # the proxy's impairment between the tester and the server
    time_limit: float = 30.0
    side: str = field(default="server", init=False)


@dataclass(frozen=True)
class ClientOutcome:
    """What the student's client did."""

    status: int | None  # exit status; None: stopped at the time limit
    stdout: bytes
    stderr: bytes
    after: str = ""  # output of the check's ``inspect`` command, run after the client

    def said(self) -> str:
        """The last line the client printed on stderr, for a failure's message."""
        lines = self.stderr.decode(errors="replace").strip().splitlines()
        return lines[-1][:200] if lines else "(nothing on stderr)"


@dataclass(frozen=True)
class ClientCheck:
    """The student's client, run once against a server; ``judge`` reads what happened."""

    name: str
    pitfall: str
    args: list[str]  # appended to the client command; {host}, {port} filled in
    judge: Callable[[ClientOutcome], Verdict]
    impair: str = ""
    stdin: bytes = b""
    peer: str = ""  # "": the reference server; else one of the lab's PEERS
    setup: str = ""  # shell, in the client's folder, before it runs
    inspect: str = ""  # shell, in the client's folder, after it ran ($CLIENT_STATUS: its exit status)
    time_limit: float = 20.0
    side: str = field(default="client", init=False)


Check = Union[ServerCheck, ClientCheck]


# --- judges of client checks --------------------------------------------------------


def printed(lines: list[bytes], want_status: int = 0):
    """A judge: the client printed exactly these lines and exited ``want_status``."""
    want = b"".join(line + b"\n" for line in lines)

    def judge(outcome: ClientOutcome) -> Verdict:
        if outcome.status is None:
            return Verdict.fail(f"the client was still running at the time limit; it printed {show(outcome.stdout)}")
        if outcome.stdout != want:
            return Verdict.fail(f"expected {show(want)} on stdout, got {show(outcome.stdout)}")
        if outcome.status != want_status:
            return Verdict.fail(f"replies right, but exit status {outcome.status}: {outcome.said()}")
        return Verdict.ok()
    return judge


def failed_clearly(what: str, hint: str, also: bytes = b"", first: bytes = b""):
    """A judge: the client printed ``first`` (what worked), then stopped by itself, with a
    non-zero status and a message on stderr (holding ``also``)."""
    def judge(outcome: ClientOutcome) -> Verdict:
        if not outcome.stdout.startswith(first):
            return Verdict.fail(f"before that, the client should have printed {show(first)}; "
                                f"it printed {show(outcome.stdout)} ({outcome.said()})")
        if outcome.status is None:
            return Verdict.fail(f"{what}, and the client was still waiting at the time limit: {hint}")
        if outcome.status == 0:
            return Verdict.fail(f"{what}, and the client exited 0 (printed {show(outcome.stdout)}): "
                                "a failure must end with a non-zero exit status")
        if not outcome.stderr.strip():
            return Verdict.fail(f"{what}: the client exited {outcome.status} but said nothing on stderr")
        if also and also not in outcome.stderr:
            return Verdict.fail(f"{what}: stderr should show the server's message {show(also)}; "
                                f"it says {outcome.said()!r}")
        return Verdict.ok()
    return judge


# --- the testers' socket calls: every one bounded -------------------------------------


def connect(target: Target, timeout: float = WAIT) -> socket.socket:
    sock = socket.create_connection(target, timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_until(sock: socket.socket, done: Callable[[bytes], bool], limit: int = 1 << 24,
               timeout: float = WAIT) -> tuple[bytes, str]:
    """Reads until ``done(data)``; returns the data and "" or what stopped it early."""
    data = bytearray()
    deadline = time.monotonic() + timeout
    while not done(bytes(data)):
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(data), f"no more after {timeout:g} s"
        if len(data) > limit:
            return bytes(data), f"more than {limit} bytes"
        sock.settimeout(left)
        try:
            chunk = sock.recv(1 << 16)
        except socket.timeout:
            continue
        except OSError as exc:
            return bytes(data), f"connection lost ({exc.strerror or exc})"
        if not chunk:
            return bytes(data), "the server closed the connection"
        data += chunk
    return bytes(data), ""


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the peer closes (FIN or RST) within ``seconds``, whatever it sends first."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if not sock.recv(1 << 16):
                return True
        except socket.timeout:
            return False
        except OSError:
            return True
    return False


def vanish(sock: socket.socket) -> None:
    """Close with RST, as a killed client's kernel would: no FIN, nothing more."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def show(data: bytes, limit: int = 60) -> str:
    """A short quoted rendering of bytes for a message."""
    text = repr(data[:limit])
    return text + (f"... ({len(data)} bytes)" if len(data) > limit else "")


def serve_peer(port: int, handle: Callable[[socket.socket], None], limit: int = 1000) -> None:
    """A misbehaving server for the client checks: ``handle`` each connection, in a thread, until killed.

    At most ``limit`` connections, each with WAIT as its socket timeout: a
    peer is test equipment, and must not be what hangs.
    """
    import threading

    def run(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(WAIT)
            try:
                handle(conn)
            except OSError:
                pass  # the client under test went away: its own business

    with socket.create_server(("0.0.0.0", port), reuse_port=False) as listener:
        print(f"peer listening on port {port}", flush=True)
        for _ in range(limit):
            conn, _ = listener.accept()
            threading.Thread(target=run, args=(conn,), daemon=True).start()


def serve_udp_peer(port: int, handle: Callable[[socket.socket, bytes, tuple], None], limit: int = 10_000) -> None:
    """The same for a UDP lab: ``handle(sock, datagram, sender)`` each datagram, in turn, until killed.

    At most ``limit`` datagrams; each is read whole (65535 bytes: more than
    any UDP payload).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("0.0.0.0", port))
        print(f"peer listening on UDP port {port}", flush=True)
        for _ in range(limit):
            data, sender = sock.recvfrom(65535)
            try:
                handle(sock, data, sender)
            except OSError:
                pass  # the client under test went away: its own business


# --- testers every TCP lab shares ---------------------------------------------------

#: The contracts' idle limit: a server closes a client silent this long.
IDLE_LIMIT = 5.0


def closes_silent_client(target: Target, opening: bytes = b"", idle_limit: float = IDLE_LIMIT) -> Verdict:
    """A client that sends ``opening`` (maybe nothing), then nothing: closed within the idle limit, and some."""
    wait = idle_limit + 3
    with connect(target) as sock:
        if opening:
            sock.sendall(opening)
        if closed_within(sock, wait):
            return Verdict.ok()
    what = "half a request and then nothing" if opening else "nothing"
    return Verdict.fail(f"a client that sent {what} was still connected after {wait:g} s: without a timeout "
                        f"(settimeout({idle_limit:g})) one silent client holds a thread, or the whole server, for ever")


def refuses_endless(target: Target, opening: bytes, what: str, advice: str, wait: float = 8.0) -> Verdict:
    """Send ``opening``, then keep trickling 1 KiB every 0.5 s (so that an idle timeout is not
    what ends it): passes when the server closes within ``wait``, the refusal of bad input."""
    deadline = time.monotonic() + wait
    with connect(target) as sock:
        try:
            sock.sendall(opening)
            while time.monotonic() < deadline:
                if closed_within(sock, 0.5):
                    return Verdict.ok()
                sock.sendall(b"x" * 1024)
        except OSError:
            return Verdict.ok()  # the server closed while we sent: refused
    return Verdict.fail(f"{what}, and the server was still reading after {wait:g} s: {advice}")
