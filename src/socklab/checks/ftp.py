"""Checks of the ftp exercise: files over framed messages (C O E F D, socklab/ftp/protocol.py).

The contract (labs/ftp/README.md, "Your own server and client"): a subset of
the wire format, get, put and quit, SHA-256 only.

    python3 server.py PORT ROOT         serve the files of the folder ROOT: get NAME,
                                        put NAME, quit ("bye", then close); anything
                                        else, a missing file or a name outside ROOT:
                                        an E frame, and the connection goes on; an
                                        upload is kept only once its D frame matches
                                        (a temporary name, then rename); many clients
                                        at once; close a client silent for 5 s; refuse
                                        a frame over 64 KiB (E bad-frame, or just close)
    python3 client.py HOST PORT CMD...  CMD is `get NAME` (download NAME into the
                                        current folder) or `put FILE` (upload FILE under
                                        its base name); several in a row run in order
                                        over one connection, then quit. Exit 0 when all
                                        worked; at the first failure (an E frame, a
                                        digest that does not match, the connection lost,
                                        no answer for 10 s): a message on stderr, exit
                                        non-zero, and no partial or unverified file under
                                        the real name (a temporary name, then rename)

What the student's client did is read from its folder afterwards (``inspect``):
the files it downloaded and, for uploads, the same files fetched back from the
reference server. Failure checks run against a scripted peer (``PEERS``) that
first serves a.txt with each frame alone, so that a client which does nothing
cannot pass them: the part that works must have worked.

Every pitfall of the list applies to this exercise (TCP, framed messages,
files): none is left out.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable

from socklab.checks.model import (
    WAIT,
    ClientCheck,
    ClientOutcome,
    Contract,
    ServerCheck,
    Target,
    Verdict,
    closed_within,
    closes_silent_client,
    connect,
    failed_clearly,
    refuses_endless,
    vanish,
)
from socklab.framing import NEED_DATA, ProtocolError
from socklab.ftp import protocol as p
from socklab.samples import blocks

PORT = 2121
TRANSPORT = "tcp"
IDLE_LIMIT = 5.0  # the contract's: a silent client is closed after this
CLIENT_TIMEOUT = 10.0  # the contract's: a client gives up on a server silent this long
LARGE = 8 << 20  # bytes: many times any socket buffer, so send() does send part

# --- the files: the same bytes on every side ------------------------------------------

POEM = b"".join(b"line %02d: one recv() is not one message, and a frame says how long it is\n" % i
                for i in range(1, 11))


def content(name: str) -> bytes:
    """The bytes of a file the checks use: served (a.txt, poem.txt) or uploaded (up.txt, large.bin)."""
    if name == "a.txt":
        return b"hello from the socklab ftp checks\n"
    if name == "poem.txt":
        return POEM
    if name == "up.txt":
        return b"an upload from the client, small enough to arrive in one piece\n"
    if name == "large.bin":
        return b"".join(blocks(name, LARGE))
    raise KeyError(name)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_files(folder: str, names: list[str]) -> None:
    """For setup shells: write these files into ``folder``."""
    for name in names:
        Path(folder, name).write_bytes(content(name))


def printf(name: str, into: str = ".") -> str:
    """Shell writing a small text file: no Python to start (a server's start is timed)."""
    return f"printf %s {shlex.quote(content(name).decode())} > {into}/{name}"


CONTRACT = Contract(
    server=["python3", "{dir}/server.py", "{port}", "{root}"],
    client=["python3", "{dir}/client.py", "{host}", "{port}"],
    reference_server=["python3", "-m", "socklab", "server", "ftp", "--port", "{port}", "--root", "{root}",
                      "--timeout", f"{IDLE_LIMIT:g}"],
    # socklab's client takes one command or a script: this runs it on the contract's argv.
    reference_client=["python3", "-c", ("import sys; from socklab.checks.ftp import reference_client; "
                                        "sys.exit(reference_client(sys.argv[1:]))"), "{host}", "{port}"],
    # The files served, in ROOT: a.txt and poem.txt (uploads are the checks' own).
    server_setup=" && ".join(["mkdir -p {root}", printf("a.txt", "{root}"), printf("poem.txt", "{root}")]),
)


# --- the tester's end of a connection: frames out, messages in, every wait bounded ----


class Failed(Exception):
    """A check's finding: the message says what the other side did."""


def describe(message: Any) -> str:
    if isinstance(message, p.Command):
        return f"C {str(message)!r}"
    if isinstance(message, p.Ok):
        return f"O {message.text[:80]!r}"
    if isinstance(message, p.Error):
        return f"E {str(message)[:80]!r}"
    if isinstance(message, p.FileHeader):
        return f"F (a file of {message.size} bytes)"
    if isinstance(message, p.Digest):
        return "D (a digest)"
    return repr(message)


class Wire:
    """One connection, read through the reference decoder: what it accepts is the wire format."""

    def __init__(self, sock: socket.socket, who: str = "the server") -> None:
        self.sock, self.who = sock, who
        self.decoder = p.Decoder()

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.sock.close()

    def send(self, *messages: Any) -> None:
        self.sock.sendall(b"".join(p.encode(m) for m in messages))

    def event(self, timeout: float = WAIT) -> Any:
        """The decoder's next event (a message or a piece of body), or Failed."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                event = self.decoder.next_event()
            except ProtocolError as exc:
                raise Failed(f"{self.who} sent something that is not a frame ({exc})") from None
            if event is not NEED_DATA:
                return event
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failed(f"{self.who} sent nothing more for {timeout:g} s")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(1 << 16)
            except socket.timeout:
                continue
            except OSError as exc:
                raise Failed(f"{self.who} dropped the connection ({exc.strerror or exc})") from None
            if not data:
                raise Failed(f"{self.who} closed the connection")
            self.decoder.feed(data)

    def reply(self, timeout: float = WAIT) -> Any:
        """The next message; a file (F, body, D) comes back whole, as (FileHeader, body)."""
        message = self.event(timeout)
        if not isinstance(message, p.FileHeader):
            return message
        body = bytearray()
        while self.decoder.body_remaining:
            body += self.event(timeout).data
        digest = self.event(timeout)  # the decoder takes nothing but a D frame here
        if message.algorithm != p.DEFAULT_CHECKSUM:
            raise Failed(f"{self.who}'s F frame names the checksum {message.algorithm!r}; the contract says sha256")
        if digest.value != hashlib.sha256(body).digest():
            raise Failed(f"the D frame after {len(body)} bytes of file body is not their SHA-256")
        return message, bytes(body)

    def file(self, name: str, want: bytes, timeout: float = WAIT) -> None:
        """The answer to ``get name``: exactly ``want``, or Failed."""
        answer = self.reply(timeout)
        if not isinstance(answer, tuple):
            raise Failed(f"get {name}: expected the file (F, body, D), got {describe(answer)}")
        body = answer[1]
        if body != want:
            raise Failed(f"get {name}: {len(body)} bytes came that are not the file's {len(want)} bytes")

    def get(self, name: str, want: bytes | None = None, timeout: float = WAIT) -> None:
        self.send(p.Command("get", name))
        self.file(name, content(name) if want is None else want, timeout)

    def put(self, name: str, body: bytes, digest: bytes | None = None, timeout: float = WAIT) -> Any:
        """put ``name``: after "ready", the file; returns the server's last word (O or E)."""
        self.ready(name)
        # Three writes, as a client makes them: merging them is the network's doing (merge=).
        self.send(p.FileHeader(len(body)))
        self.sock.sendall(body)
        self.send(p.Digest(hashlib.sha256(body).digest() if digest is None else digest))
        return self.reply(timeout)

    def ready(self, name: str) -> None:
        self.send(p.Command("put", name))
        answer = self.reply()
        if not isinstance(answer, p.Ok):
            raise Failed(f"put {name}: expected O 'ready', got {describe(answer)}")

    def stored(self, name: str, body: bytes, timeout: float = WAIT) -> None:
        answer = self.put(name, body, timeout=timeout)
        if not isinstance(answer, p.Ok):
            raise Failed(f"put {name} ({len(body)} bytes): expected O 'stored ...', got {describe(answer)}")

    def refused(self, command: p.Command, why: str) -> None:
        """``command`` ({why}) must be answered with an E frame, and nothing else."""
        self.send(command)
        answer = self.reply()
        if not isinstance(answer, p.Error):
            got = describe(answer[0] if isinstance(answer, tuple) else answer)
            raise Failed(f"{command}: {why}: expected an E frame, got {got}")

    def quit(self) -> None:
        self.send(p.Command("quit"))
        answer = self.reply()
        if not isinstance(answer, p.Ok):
            raise Failed(f"quit: expected O 'bye', got {describe(answer)}")
        if not closed_within(self.sock, 2.0):
            raise Failed("after quit and its O 'bye', the server kept the connection open")


def session(target: Target) -> Wire:
    return Wire(connect(target))


def checking(hint: str) -> Callable[[Callable[[Target], None]], Callable[[Target], Verdict]]:
    """Steps that raise Failed become a drive function returning a Verdict; a failure ends with ``hint``."""
    def wrap(steps: Callable[[Target], None]) -> Callable[[Target], Verdict]:
        def drive(target: Target) -> Verdict:
            try:
                steps(target)
            except Failed as exc:
                return Verdict.fail(f"{exc}. {hint}")
            except ConnectionRefusedError:
                return Verdict.fail(f"the connection was refused: is the server still running? {hint}")
            except OSError as exc:
                return Verdict.fail(f"the server dropped the connection ({exc.strerror or exc}). {hint}")
            return Verdict.ok()
        drive.__name__ = steps.__name__
        return drive
    return wrap


def still_serving(target: Target, after: str) -> None:
    try:
        with session(target) as wire:
            wire.get("a.txt")
    except Failed as exc:
        raise Failed(f"after {after}, a new client's get a.txt: {exc}") from None
    except OSError as exc:
        raise Failed(f"after {after}, a new client could not connect ({exc.strerror or exc})") from None


# --- the student's server -------------------------------------------------------


@checking("Each frame is a 5-byte header (kind, length) and exactly that payload; a file is F, the body, "
          "then a D frame with its SHA-256; quit is answered O 'bye', then the server closes")
def server_basic(target: Target) -> None:
    with session(target) as wire:
        wire.get("a.txt")
        wire.stored("up.txt", content("up.txt"))
        wire.get("up.txt", content("up.txt"))
        wire.quit()


@checking("A recv() returns what has arrived, maybe one byte: read the 5-byte header, then exactly the "
          "payload's length, then exactly the body's size, each in a loop")
def server_partial_recv(target: Target) -> None:
    with session(target) as wire:
        wire.stored("sliced.txt", content("up.txt"), timeout=15)
        wire.get("sliced.txt", content("up.txt"), timeout=10)


@checking("One recv() may hold several frames: read a body with recv(min(remaining, ...)) so that the "
          "D frame behind it stays for the next read, and keep what follows a frame for the next one")
def server_sticky_frames(target: Target) -> None:
    with session(target) as wire:
        wire.stored("merged.txt", POEM)  # F, body and D arrive in one recv()
        for command in ("get merged.txt", "get a.txt", "quit"):  # three commands in one recv()
            wire.send(p.Command.parse(command))
        wire.file("merged.txt", POEM)
        wire.file("a.txt", content("a.txt"))
        answer = wire.reply()
        if not isinstance(answer, p.Ok):
            raise Failed(f"quit, the third command of one recv(): expected O 'bye', got {describe(answer)}")


@checking("send() may send less than it is given: sendall(), and loop on recv() until all of the "
          "body's size is in")
def server_large_file(target: Target) -> None:
    body = content("large.bin")
    with session(target) as wire:
        wire.stored("large.bin", body, timeout=30)
        wire.get("large.bin", body, timeout=30)


@checking("Write an upload under a temporary name and os.replace() it only once its digest matches; "
          "a vanished client (recv() == b'' or a ConnectionResetError) ends its own connection, not the server")
def server_client_vanishes(target: Target) -> None:
    with session(target) as wire:
        wire.ready("gone.bin")
        wire.send(p.FileHeader(1 << 20))
        wire.sock.sendall(b"".join(blocks("gone.bin", 1 << 16)))
        time.sleep(0.3)
        vanish(wire.sock)  # RST, 64 KiB into a 1 MiB upload, as when a client is killed
    time.sleep(0.5)
    with session(target) as again:
        again.refused(p.Command("get", "gone.bin"), "its upload never finished, so nothing may be under its name")
        again.get("a.txt")


def server_silent_client(target: Target) -> Verdict:
    return closes_silent_client(target, idle_limit=IDLE_LIMIT)


@checking("The server serves one client at a time: a thread per client (or selectors), so that one "
          "connected client never makes the others wait")
def server_concurrent_clients(target: Target) -> None:
    with session(target) as first:
        first.get("a.txt")
        with session(target) as second:
            try:
                second.get("poem.txt", timeout=3)
            except Failed as exc:
                raise Failed(f"a second client, while the first stayed connected: {exc}") from None
        first.get("a.txt")


@checking("Resolve the path (os.path.realpath of ROOT joined with the name) and refuse it with an E frame "
          "unless it is inside ROOT, then read the next command")
def server_path_escape(target: Target) -> None:
    with session(target) as wire:
        wire.refused(p.Command("get", "../../etc/passwd"), "a path out of ROOT")
        wire.refused(p.Command("get", "/etc/passwd"), "a path out of ROOT")
        wire.refused(p.Command("put", "../escape.txt"), "an upload out of ROOT")
        wire.get("a.txt")


@checking("Answer a request you cannot serve with an E frame ('CODE: message') and read the next "
          "command: the connection goes on")
def server_bad_requests(target: Target) -> None:
    with session(target) as wire:
        wire.refused(p.Command("dance"), "an unknown command")
        wire.refused(p.Command("get", "missing.txt"), "a file that is not there")
        wire.get("a.txt")


@checking("Compare the D frame with the SHA-256 of what arrived: on a mismatch answer E (checksum-mismatch), "
          "keep nothing under the name, and read the next command")
def server_bad_digest(target: Target) -> None:
    with session(target) as wire:
        answer = wire.put("forged.txt", POEM, digest=hashlib.sha256(b"not the poem").digest())
        if not isinstance(answer, p.Error):
            raise Failed(f"put forged.txt, whose D frame is not the body's SHA-256: expected an E frame, "
                         f"got {describe(answer)}")
        wire.refused(p.Command("get", "forged.txt"), "its upload did not verify, so nothing may be under its name")
        wire.get("a.txt")


def server_oversized_frame(target: Target) -> Verdict:
    """A C frame claiming 2 GiB, then a trickle of bytes: refused (E, then close), not read for ever."""
    verdict = refuses_endless(target, p.HEADER.pack(b"C", 0x7FFF_FFFF) + b"get a.txt",
                              f"a frame claiming {0x7FFF_FFFF} bytes",
                              "check the length against the limit (64 KiB) before reading, then refuse "
                              "(E bad-frame) and close: a peer must not choose what you allocate")
    if not verdict.passed:
        return verdict
    try:
        still_serving(target, "a frame claiming 2 GiB")
    except Failed as exc:
        return Verdict.fail(str(exc))
    return Verdict.ok()


# --- the student's client -------------------------------------------------------


def setup(name: str) -> str:
    """Shell for a client check's setup: the file to upload, in the client's folder."""
    if name == "up.txt":
        return printf(name)
    return f"python3 -c 'from socklab.checks.ftp import write_files; write_files(\".\", [\"{name}\"])'"


def inspect(*uploads: str) -> str:
    """Shell for a client check's inspect: the client's folder, and its uploads fetched back."""
    return ("python3 -c 'import sys; from socklab.checks.ftp import report_folder; "
            "report_folder(sys.argv[1:])' " + " ".join(uploads))


def report_folder(uploads: list[str]) -> None:
    """Prints, as JSON, the files of the current folder (name: [size, sha256]) and, when the client
    exited 0 (CLIENT_STATUS), each upload as the reference server now has it (name: sha256 or why not).

    Fetched from the server directly, not through the proxy: the check's impairment is for the
    client under test only."""
    local = {}
    for entry in os.scandir("."):
        if entry.is_file(follow_symlinks=False):
            data = Path(entry.path).read_bytes()
            local[entry.name] = [len(data), sha256(data)]
    server: dict[str, str] = {}
    if uploads and os.environ.get("CLIENT_STATUS") == "0":
        server = fetch_back(uploads)
    print(json.dumps({"local": local, "server": server}))


def fetch_back(names: list[str]) -> dict[str, str]:
    import tempfile

    from socklab.ftp.client import FtpClient, FtpError

    found = {}
    with tempfile.TemporaryDirectory() as folder:
        try:
            with FtpClient(os.environ.get("CHECK_SERVER", "server"), PORT, timeout=CLIENT_TIMEOUT,
                           progress=None) as client:
                for name in names:
                    try:
                        transfer = client.get(name, Path(folder, name))
                        found[name] = sha256(Path(folder, name).read_bytes()) if transfer.verified else "mismatch"
                    except FtpError as exc:
                        found[name] = f"the server says {exc}"
                client.quit()
        except (OSError, ProtocolError) as exc:
            found.update({name: f"cannot fetch it ({exc})" for name in names if name not in found})
    return found


def folder(outcome: ClientOutcome) -> dict:
    try:
        return json.loads(outcome.after.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"local": {}, "server": {}, "error": outcome.after.strip()[-200:]}


def transferred(gets: list[str], puts: list[str], hint: str):
    """A judge: the client exited 0, its downloads are in its folder, its uploads on the server, all exact."""
    def judge(outcome: ClientOutcome) -> Verdict:
        if outcome.status is None:
            return Verdict.fail(f"the client was still running at the time limit ({outcome.said()}). {hint}")
        if outcome.status != 0:
            return Verdict.fail(f"the client exited {outcome.status}: {outcome.said()}. {hint}")
        seen = folder(outcome)
        for name in gets:
            want = content(name)
            if name not in seen["local"]:
                return Verdict.fail(f"the client exited 0, but there is no {name} in its folder: "
                                    "get NAME downloads NAME into the current folder")
            size, digest = seen["local"][name]
            if digest != sha256(want):
                return Verdict.fail(f"{name} in the client's folder ({size} bytes) is not the server's file "
                                    f"({len(want)} bytes). {hint}")
        for name in puts:
            back = seen["server"].get(name, "not looked at")
            if back != sha256(content(name)):
                why = "a different file" if len(back) == 64 else back
                return Verdict.fail(f"the client exited 0, but the server's {name} after the put: {why}. {hint}")
        return Verdict.ok()
    return judge


def failed_safely(what: str, hint: str, absent: str = "", also: bytes = b""):
    """A judge: a.txt (the first command) downloaded right, then a clear failure (``failed_clearly``),
    and no ``absent`` left under its real name."""
    clearly = failed_clearly(what, hint, also)

    def judge(outcome: ClientOutcome) -> Verdict:
        if outcome.status is None:
            return clearly(outcome)  # still waiting: that is the finding
        seen = folder(outcome)
        first = seen["local"].get("a.txt", [0, ""])
        if first[1] != sha256(content("a.txt")):
            return Verdict.fail("before that, the first command, get a.txt, should have downloaded a.txt; "
                                f"{'it is not right' if first[1] else 'it is not there'} ({outcome.said()})")
        verdict = clearly(outcome)
        if verdict.passed and absent in seen["local"]:
            return Verdict.fail(f"{what}, and {absent} ({seen['local'][absent][0]} bytes) was left in the "
                                "client's folder: download to a temporary name, os.replace() it once the "
                                "digest matches, and remove it on a failure")
        return verdict
    return judge


# --- the misbehaving server, for the client checks -------------------------------

PACE = 0.1  # seconds between the peer's frames: each arrives alone, whatever the client's reads
CUT = 1 << 20  # bytes of a file body before the peer closes or goes silent


def scripted_server(conn: socket.socket) -> None:
    """The peer ``scripted``: a.txt served right, each frame alone; then, by name, what goes wrong:
    bad.txt (a D frame that does not match), cut.bin (closed 1 MiB into 8 MiB), stall.bin (silent
    1 MiB into 8 MiB), anything else not found; every put refused."""
    wire = Wire(conn, who="the client")

    def say(*messages: Any) -> None:
        for message in messages:
            time.sleep(PACE)
            wire.send(message)

    def send_file(body: bytes, size: int | None = None, digest: bytes | None = None) -> None:
        say(p.FileHeader(len(body) if size is None else size))
        time.sleep(PACE)
        conn.sendall(body)
        if size is None:
            say(p.Digest(hashlib.sha256(body).digest() if digest is None else digest))

    while True:
        try:
            command = wire.event(timeout=3 * WAIT)
        except Failed:
            return
        if not isinstance(command, p.Command):
            return  # e.g. a file after a refused put: the client did not wait for the answer
        name = command.argument
        if command.verb == "quit":
            say(p.Ok("bye"))
            return
        if command.verb == "put":
            say(p.Error(p.ErrorCode.FORBIDDEN, f"{name}: uploads are closed on this server"))
        elif command.verb != "get":
            say(p.Error(p.ErrorCode.BAD_COMMAND, f"unknown command {command.verb!r}"))
        elif name == "a.txt":
            send_file(content(name))
        elif name == "bad.txt":
            send_file(POEM, digest=hashlib.sha256(b"not the poem").digest())
        elif name in ("cut.bin", "stall.bin"):
            send_file(b"".join(blocks(name, CUT)), size=LARGE)
            if name == "cut.bin":
                conn.shutdown(socket.SHUT_WR)  # FIN, in the middle of the body
            closed_within(conn, 3 * CLIENT_TIMEOUT)  # then silence, until the client gives up
            return
        else:
            say(p.Error(p.ErrorCode.NOT_FOUND, f"no such file: {name}"))


PEERS = {"scripted": scripted_server}


def reference_client(argv: list[str]) -> int:
    """socklab's client, run on the contract's argv: HOST PORT (get NAME | put FILE)..."""
    import argparse
    import shlex
    import tempfile

    from socklab.ftp import client

    host, port, *words = argv
    if not words or len(words) % 2:
        print("usage: HOST PORT (get NAME | put FILE)...", file=sys.stderr)
        return 2
    script = "".join(shlex.join(words[i:i + 2]) + "\n" for i in range(0, len(words), 2))
    with tempfile.NamedTemporaryFile("w", suffix=".ftp") as file:
        file.write(script)
        file.flush()
        parser = argparse.ArgumentParser()
        client.add_arguments(parser)
        args = parser.parse_args(["--host", host, "--port", port, "--timeout", f"{CLIENT_TIMEOUT:g}",
                                  "--script", file.name])
        return client.main(args)


CHECKS = [
    ServerCheck("server-basic", "the happy path: get, put, get, quit, each frame arriving alone", server_basic,
                impair="frames=100ms"),
    ServerCheck("server-partial-recv", "frames arrive one byte at a time: one recv() is not one frame",
                server_partial_recv, impair="slice=1:2ms,dir=to-server", time_limit=60),
    ServerCheck("server-sticky-frames", "an upload's F, body and D in one recv(), then three commands in one",
                server_sticky_frames, impair="merge=100ms,dir=to-server"),
    ServerCheck("server-large-file", "an 8 MiB upload and download: send() versus sendall(), a body in many recv()",
                server_large_file, time_limit=90),
    ServerCheck("server-client-vanishes", "a client killed mid-upload: nothing kept under the name, the server goes on",
                server_client_vanishes),
    ServerCheck("server-silent-client", "a client that says nothing is closed after a timeout",
                server_silent_client),
    ServerCheck("server-concurrent-clients", "a second client is served while the first is connected",
                server_concurrent_clients),
    ServerCheck("server-path-escape", "bad input: get ../../etc/passwd, get /etc/passwd, put ../escape.txt",
                server_path_escape),
    ServerCheck("server-bad-requests", "bad input: an unknown command, a missing file: E, and the connection goes on",
                server_bad_requests),
    ServerCheck("server-bad-digest", "bad input: an upload whose D frame does not match is refused, not kept",
                server_bad_digest),
    ServerCheck("server-oversized-frame", "bad input: a frame claiming 2 GiB is refused before it is read",
                server_oversized_frame),
    ClientCheck("client-basic", "the happy path: get, then put, each frame arriving alone",
                ["get", "a.txt", "put", "up.txt"],
                transferred(["a.txt"], ["up.txt"], "Each frame is a 5-byte header (kind, length) and exactly "
                            "that payload; put waits for O 'ready', then sends F, the body and D"),
                impair="frames=100ms", setup=setup("up.txt"), inspect=inspect("up.txt")),
    ClientCheck("client-partial-recv", "a download arrives one byte at a time: one recv() is not one frame",
                ["get", "a.txt"],
                transferred(["a.txt"], [], "A recv() returns what has arrived, maybe one byte: read the "
                            "header, the payload and the body each in a loop until all of it is in"),
                # 20 ms apart, so that even on a loaded machine each byte is read alone: frames
                # merged in one recv() are client-sticky-frames' business, not this check's
                impair="slice=1:20ms,dir=to-client", inspect=inspect(), time_limit=40),
    ClientCheck("client-sticky-frames", "a download's F, body and D arrive in one recv()", ["get", "poem.txt"],
                transferred(["poem.txt"], [], "The D frame came in the same recv() as the end of the body: "
                            "read the body with recv(min(remaining, ...)), never more than is left of it"),
                impair="merge=100ms,dir=to-client", inspect=inspect(), time_limit=40),
    ClientCheck("client-large-put", "an 8 MiB upload: send() versus sendall()", ["put", "large.bin"],
                transferred([], ["large.bin"], "send() may send less than it is given, and does on a "
                            "large file: sendall() sends it all"),
                setup=setup("large.bin"), inspect=inspect("large.bin"), time_limit=60),
    ClientCheck("client-server-closes", "the server closes 1 MiB into an 8 MiB download: a clear error, no file",
                ["get", "a.txt", "get", "cut.bin"],
                failed_safely("the server closed the connection in the middle of cut.bin",
                              "recv() == b'' means the server closed: an error, not a loop", absent="cut.bin"),
                peer="scripted", inspect=inspect(), time_limit=30),
    ClientCheck("client-silent-server", "the server goes silent mid-download: the client gives up after a timeout",
                ["get", "a.txt", "get", "stall.bin"],
                failed_safely("the server went silent in the middle of stall.bin",
                              f"without settimeout({CLIENT_TIMEOUT:g}) a client waits for ever", absent="stall.bin"),
                peer="scripted", inspect=inspect(), time_limit=30),
    ClientCheck("client-bad-digest", "bad input: a download whose D frame does not match is an error, not kept",
                ["get", "a.txt", "get", "bad.txt"],
                failed_safely("bad.txt's D frame is not the SHA-256 of its body",
                              "compare the digest before keeping the file", absent="bad.txt"),
                peer="scripted", inspect=inspect()),
    ClientCheck("client-error-reply", "bad input: an E frame instead of the file is an error, with its message",
                ["get", "a.txt", "get", "missing.txt"],
                failed_safely("the server answered E not-found: no such file: missing.txt", "",
                              absent="missing.txt", also=b"no such file"),
                peer="scripted", inspect=inspect()),
    ClientCheck("client-put-refused", "bad input: an E frame instead of 'ready' stops the upload",
                ["get", "a.txt", "put", "up.txt"],
                failed_safely("the server answered the put with E forbidden: ... uploads are closed", "",
                              also=b"uploads are closed"),
                peer="scripted", setup=setup("up.txt"), inspect=inspect()),
]
