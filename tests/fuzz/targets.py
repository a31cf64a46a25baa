"""The five servers as the fuzzer sees them: how each starts, what a right answer is, its normal client.

Oracles check every answer that came back whole (the client half-closed and
read up to the server's FIN), against the exercise's own protocol code run
offline on the same bytes:

    echo   exactly what EchoSession answers to the whole input at once: the
           server, fed the same bytes cut anywhere, must say the same
    ftp    the answer decodes as server frames (O, E, F + body + D), ends on
           a frame boundary, and every error code is a known one
    shell  in the length framing, whole Result frames and nothing else
    udp    every echo is byte for byte a datagram that was sent
    http   one response per request the offline decoder finds, in order, up
           to the first that closes; the error status it predicts; nothing after

RSS bound (harness.Target.rss_bound_kib): the RSS at start (after the normal
client's first run) plus, for each concurrent fuzz connection, the most the
server holds for one connection -- given per exercise below, from its
buffers -- plus a touched thread stack, plus 48 MiB for glibc's arenas.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import strategies as s
from harness import REFERENCE_TIMEOUT, Input, Outcome, ServerProcess, Target, tcp_exchange, udp_exchange, udp_records
from socklab.echo import protocol as echo
from socklab.echo.client import EchoClient
from socklab.echo.server import EchoSession
from socklab.framing import NEED_DATA, RemoteProtocolError
from socklab.ftp import protocol as ftp
from socklab.ftp.client import FtpClient
from socklab.http import protocol as http
from socklab.http.client import HttpClient
from socklab.samples import write_sample
from socklab.shell import protocol as shell
from socklab.shell.client import ShellClient
from socklab.udp import protocol as udp
from socklab.udp.client import UdpEndpoint
from socklab.udp.server import Dropper

EXERCISES = ("echo", "ftp", "shell", "udp", "http")
CANARY = b"CANARY: this file is outside the served folder\n"
REFERENCE_FILE = "reference-file.bin"
REFERENCE_SIZE = 200_000
#: Every tenth datagram dropped, seeded: exercises the Dropper's memory of peers
#: (each fuzz input comes from a new port, a new peer).
UDP_DROP, UDP_SEED = 0.1, 7


def served_tree(base: Path) -> tuple[Path, Path]:
    """A served folder and, beside it, what must never be served or written.

        base/secret, base/outside/canary.txt    the canaries
        base/root/                              served: index.html, about.txt, a.txt, sub/...
        base/root/escape -> ../outside          links that point outside
        base/root/canary-link -> ../outside/canary.txt
        base/root/abs-link -> <base>/outside    (absolute)
        base/root/etc-link -> /etc
    """
    root, outside = base / "root", base / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (base / "secret").write_bytes(CANARY)
    (outside / "canary.txt").write_bytes(CANARY)
    (root / "index.html").write_text("<p>index</p>\n")
    (root / "about.txt").write_text("about socklab\n")
    (root / "a.txt").write_text("a\n")
    (root / "sub" / "c.txt").write_text("c\n")
    (root / "sub" / "index.html").write_text("<p>sub</p>\n")
    write_sample(root / REFERENCE_FILE, REFERENCE_SIZE)
    (root / "escape").symlink_to("../outside")
    (root / "canary-link").symlink_to("../outside/canary.txt")
    (root / "abs-link").symlink_to(outside.resolve())
    (root / "etc-link").symlink_to("/etc")
    return root, outside


def _whole(inp: Input, out: Outcome) -> bool:
    """Whether ``out`` is the server's whole answer: we half-closed and read up to its FIN."""
    return inp.end == "half" and out.eof and not out.reset and not out.overflow


# --- echo ----------------------------------------------------------------------------


def echo_check(inp: Input, out: Outcome) -> str | None:
    if not _whole(inp, out):
        return None
    expected = EchoSession("oracle").received(inp.data)
    if out.received != expected:
        return (f"the answer differs from EchoSession's on the whole input: got {len(out.received)} bytes "
                f"{out.received[:80]!r}, expected {len(expected)} bytes {expected[:80]!r}")
    return None


def echo_target(server: ServerProcess) -> Target:
    turn = itertools.count()  # the three loops take turns: blocking, threaded, selectors

    def exchange(inp: Input) -> Outcome:
        return tcp_exchange(server.address(next(turn) % 3), inp)

    def reference() -> None:
        for offset in range(3):
            with EchoClient(*server.address(offset), timeout=REFERENCE_TIMEOUT) as c:
                assert c.ask(b"still here") == b"STILL HERE"
                assert c.ask("h\u00e9llo".encode()) == "H\u00c9LLO".encode()

    # A 64 KiB recv, a line of at most 64 KiB, replies up to 3 times that, and copies of each.
    return Target("echo", s.ECHO, exchange, echo_check, reference, per_connection_kib=640, prefixes=s.ECHO_PREFIXES,
                  oversize=s.ECHO_OVERSIZE)


# --- ftp -----------------------------------------------------------------------------

FTP_CODES = {v for k, v in vars(ftp.ErrorCode).items() if not k.startswith("_")}


def ftp_check(inp: Input, out: Outcome) -> str | None:
    if out.overflow:
        return None
    decoder = ftp.Decoder()
    decoder.feed(out.received)
    try:
        while (event := decoder.next_event()) is not NEED_DATA:
            if isinstance(event, ftp.Command):
                return f"the server sent a command frame: {event}"
            if isinstance(event, ftp.Error) and event.code not in FTP_CODES:
                return f"unknown error code in {event}"
    except RemoteProtocolError as exc:
        return f"the server's answer is not well framed: {exc}"
    if _whole(inp, out) and (decoder.buffered or decoder.body_remaining):
        return "the server's answer ends in the middle of a frame"
    return None


def ftp_target(server: ServerProcess, root: Path, scratch: Path) -> Target:
    upload = scratch / "upload.bin"
    write_sample(upload, 70_000)

    def reference() -> None:
        local = scratch / REFERENCE_FILE
        with FtpClient(*server.address(), progress=None, timeout=REFERENCE_TIMEOUT) as c:
            got = c.get(REFERENCE_FILE, local)
            assert got.verified and local.read_bytes() == (root / REFERENCE_FILE).read_bytes()
            assert c.put(upload, "reference-upload.bin").verified
            assert (root / "reference-upload.bin").read_bytes() == upload.read_bytes()
            assert REFERENCE_FILE in c.ls()
            c.quit()

    # The 1 MiB Connection buffer, a frame of at most 64 KiB and its copy.
    return Target("ftp", s.FTP, lambda inp: tcp_exchange(server.address(), inp), ftp_check, reference,
                  per_connection_kib=1200, prefixes=s.FTP_PREFIXES, oversize=s.FTP_OVERSIZE)


# --- shell ---------------------------------------------------------------------------


def shell_check(inp: Input, out: Outcome) -> str | None:
    if not _whole(inp, out):
        return None
    lines = shell.LineDecoder()
    lines.feed(inp.data)
    try:
        first = lines.next_event()
        if first is not NEED_DATA and shell.parse_hello(first) in ("naive", "ack"):
            return None  # the tutorials' framings: no frame boundaries to check
    except RemoteProtocolError:
        pass  # refused in the server's default framing, length
    decoder = shell.LengthDecoder()
    decoder.feed(out.received)
    try:
        while (result := decoder.next_event()) is not NEED_DATA:
            if result.flags & ~(shell.TRUNCATED | shell.TIMED_OUT | shell.REFUSED):
                return f"unknown flags in {result}"
    except RemoteProtocolError as exc:
        return f"the answer is not length-framed: {exc}"
    if decoder.buffered:
        return f"the answer ends in the middle of a frame ({decoder.buffered} bytes left)"
    return None


def shell_target(server: ServerProcess) -> Target:
    def reference() -> None:
        for framing in ("length", "ack"):
            with ShellClient(*server.address(), framing=framing, timeout=REFERENCE_TIMEOUT) as c:
                result = c.run("echo still here")
                assert result.stdout == b"still here\n", (framing, result)
                assert framing != "length" or (result.status, result.flags) == (0, 0), result

    # A 64 KiB Connection buffer, a line of at most 64 KiB, the 64 KiB output cap, and copies of each.
    return Target("shell", s.SHELL, lambda inp: tcp_exchange(server.address(), inp), shell_check, reference,
                  per_connection_kib=512, prefixes=s.SHELL_PREFIXES, oversize=s.SHELL_OVERSIZE, alphabet=s.SHELL_ALPHABET,
                  workers=12)


# --- udp -----------------------------------------------------------------------------


def udp_check(inp: Input, out: Outcome) -> str | None:
    sent = set(inp.chunks)
    for echoed in udp_records(out.received):
        if echoed not in sent:
            return f"an echo that was never sent: {echoed[:60]!r} ({len(echoed)} bytes)"
    return None


def udp_target(server: ServerProcess) -> Target:
    def reference() -> None:
        with UdpEndpoint(*server.address()) as endpoint:
            for sequence in range(3):
                ping = udp.encode(udp.Ping(sequence, time.monotonic_ns(), 100))
                for _ in range(20):  # the server drops 10%: twenty losses in a row would be a failure
                    endpoint.send(ping)
                    got = endpoint.receive(timeout=1.0)
                    if got and got[0] == ping:
                        break
                else:
                    raise AssertionError(f"no echo of ping {sequence} in 20 tries")

    # One thread, one 64 KiB datagram at a time; the Dropper remembers at most 1024 peers.
    dropper = Dropper(UDP_DROP, UDP_SEED)  # the server's, replayed: it drops the same datagrams of a new peer
    drops = [dropper.should_drop("new peer") for _ in range(64)]

    def exchange(inp: Input) -> Outcome:
        return udp_exchange(server.address(), inp, lambda i: i < len(drops) and drops[i], wait=0.25)

    # One thread serves one datagram (at most 64 KiB) at a time, whatever the clients; the
    # Dropper remembers at most 1024 peers, a random.Random each (about 5 KiB): 5 MiB.
    return Target("udp", s.UDP, exchange, udp_check, reference, per_connection_kib=0, fixed_kib=5 * 1024 + 128,
                  oversize=s.UDP_OVERSIZE, datagrams=True, workers=16)


# --- http ----------------------------------------------------------------------------

HTTP_REQUEST_STATUSES = {200, 400, 403, 404, 405}


def expected_responses(data: bytes) -> list[tuple[str, int | None]]:
    """(method, status) of each response the server owes for ``data``; status None: any of a request's."""
    decoder = http.RequestDecoder()
    decoder.feed(data)
    owed = []
    while True:
        try:
            request = decoder.next_event()
        except http.HttpError as exc:
            owed.append(("GET", exc.status))  # the refusal has a body whatever the method
            return owed
        if request is NEED_DATA:
            return owed
        owed.append((request.method, None))
        if not request.keep_alive:
            return owed


def http_check(inp: Input, out: Outcome) -> str | None:
    if not _whole(inp, out):
        return None
    decoder = http.ResponseDecoder()
    decoder.feed(out.received)
    decoder.feed_eof()
    owed = expected_responses(inp.data)
    try:
        for i, (method, status) in enumerate(owed):
            decoder.expect(method)
            response = decoder.next_event()
            if status is not None and response.status != status:
                return f"response {i + 1} is {response.status}, the decoder says {status}"
            if status is None and response.status not in HTTP_REQUEST_STATUSES:
                return f"response {i + 1} is {response.status}, not one a parsed request can get"
            while not isinstance(decoder.next_event(), http.EndOfMessage):
                pass
    except http.HttpError as exc:
        return f"{len(owed)} responses owed, the answer holds fewer or is malformed: {exc.detail}"
    if decoder.buffered:
        return f"{decoder.buffered} bytes after the {len(owed)} responses owed: {out.received[-decoder.buffered:][:80]!r}"
    return None


def http_target(server: ServerProcess, root: Path) -> Target:
    def reference() -> None:
        with HttpClient(*server.address(), timeout=REFERENCE_TIMEOUT) as c:
            body = bytearray()
            assert c.request("GET", "/index.html", sink=body.extend).response.status == 200
            assert bytes(body) == (root / "index.html").read_bytes()
            assert c.request("GET", "/missing").response.status == 404
            assert c.request("HEAD", "/about.txt", last=True).response.status == 200
            assert c.connections == 1  # one kept-alive connection for all three

    # A 64 KiB recv buffer, the decoder's buffer (a head of at most 64 KiB, a body of at most 64 KiB), copies.
    return Target("http", s.HTTP, lambda inp: tcp_exchange(server.address(), inp), http_check, reference,
                  per_connection_kib=384, prefixes=s.HTTP_PREFIXES, oversize=s.HTTP_OVERSIZE)


# --- start one ------------------------------------------------------------------------


@contextmanager
def fuzzed(name: str, base: Path) -> Iterator[tuple[ServerProcess, Target]]:
    """The named exercise's server, running, and its Target."""
    root, _ = served_tree(base / "tree")
    scratch = base / "scratch"
    scratch.mkdir()
    log = base / f"{name}-server.log"
    if name == "echo":
        with ServerProcess("echo", ["--mode", "blocking", "threaded", "selectors", "--timeout", "10"], log, ports=3) as srv:
            yield srv, echo_target(srv)
    elif name == "ftp":
        with ServerProcess("ftp", ["--root", str(root), "--timeout", "10"], log) as srv:
            yield srv, ftp_target(srv, root, scratch)
    elif name == "shell":
        # Commands run as nobody when the server is root: their folder must not be
        # under pytest's tmp_path, which only its owner may enter.
        workdir = Path(tempfile.mkdtemp(prefix="socklab-fuzz-shell-"))
        try:
            os.chmod(workdir, 0o1777)
            with ServerProcess("shell", ["--time-limit", "0.5", "--max-output", "64KiB", "--workdir", str(workdir),
                                         "--timeout", "10"], log) as srv:
                yield srv, shell_target(srv)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    elif name == "udp":
        with ServerProcess("udp", ["--drop", str(UDP_DROP), "--seed", str(UDP_SEED)], log, udp=True) as srv:
            yield srv, udp_target(srv)
    elif name == "http":
        with ServerProcess("http", ["--root", str(root), "--timeout", "10", "--request-timeout", "5"], log) as srv:
            yield srv, http_target(srv, root)
    else:
        raise ValueError(f"no fuzz target {name!r}")
