"""The FTP-like client: ``get``, ``put``, ``ls`` over one connection.

A download is written under a temporary name beside its destination and
renamed only when the checksum matches; on a mismatch or a lost connection
nothing is left under the real name.

Usage, from the client container::

    python -m socklab client ftp --host server get big.bin      # one command
    python -m socklab client ftp --host server --script s.ftp   # a script
    python -m socklab client ftp --host server                  # ftp> prompt
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import shlex
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, TextIO

from socklab import DEFAULT_PORTS
from socklab.connection import Behind, Connection, failure_reason
from socklab.framing import ProtocolError, RemoteProtocolError
from socklab.ftp import protocol as p
from socklab.progress import Progress


class FtpError(Exception):
    """The server answered a request with an E frame."""

    def __init__(self, error: p.Error) -> None:
        super().__init__(str(error))
        self.code = error.code


@dataclass
class Transfer:
    verb: str
    name: str
    size: int
    seconds: float
    algorithm: str
    verified: bool

    def summary(self) -> str:
        rate = self.size / max(self.seconds, 1e-9) / 1e6
        status = "OK" if self.verified else "MISMATCH"
        return f"{self.verb} {self.name}: {self.size} bytes, {self.seconds:.2f} s, {rate:.1f} MB/s, {self.algorithm} {status}"


class FtpClient:
    def __init__(self, host: str, port: int = DEFAULT_PORTS["ftp"], checksum: str = p.DEFAULT_CHECKSUM,
                 timeout: float = 30.0, progress: TextIO | None = sys.stderr) -> None:
        p.new_checksum(checksum)  # an unknown name fails here, before connecting
        self.host, self.port, self.timeout = host, port, timeout
        self.algorithm = checksum
        self.progress_stream = progress

    def __enter__(self) -> FtpClient:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self.conn = Connection(sock, p.Decoder(), p.encode)
        if self.algorithm != p.DEFAULT_CHECKSUM:
            self.set_checksum(self.algorithm)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.conn.close()

    def _reply(self) -> p.Ok:
        reply = self.conn.receive()
        if isinstance(reply, p.Error):
            raise FtpError(reply)
        if not isinstance(reply, p.Ok):
            raise RemoteProtocolError(f"expected a reply (O or E frame), got {type(reply).__name__}")
        return reply

    def _progress(self, label: str, total: int) -> Progress:
        return Progress(label, total, self.progress_stream)

    def set_checksum(self, algorithm: str) -> None:
        self.conn.send(p.Command("checksum", algorithm))
        self._reply()
        self.algorithm = algorithm

    def ls(self, folder: str = "") -> str:
        self.conn.send(p.Command("ls", folder))
        return self._reply().text

    def quit(self) -> None:
        self.conn.send(p.Command("quit"))
        self._reply()

    def get(self, name: str, local: Path) -> Transfer:
        self.conn.send(p.Command("get", name))
        header = self.conn.receive()
        if isinstance(header, p.Error):
            raise FtpError(header)
        if not isinstance(header, p.FileHeader):
            raise RemoteProtocolError(f"expected a file header (F frame), got {type(header).__name__}")
        local.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=local.parent, prefix=f".{local.name}.part-")
        os.fchmod(fd, 0o644)
        try:
            checksum = p.new_checksum(header.algorithm)
            progress = self._progress(f"get {name}", header.size)
            started = time.monotonic()
            with os.fdopen(fd, "wb") as target, Behind(checksum.update) as hashing:
                def store(piece: memoryview) -> None:
                    target.write(piece)
                    hashing.submit(piece)
                    progress.advance(len(piece))

                # Hashed in a second thread, while the next pieces are received
                # and written: SHA-256 is most of a get's CPU time.
                self.conn.receive_body(store, hashing.next_buffer)
                hashing.finish()
            digest = self.conn.receive()
            if not isinstance(digest, p.Digest):
                raise RemoteProtocolError(f"expected a digest (D frame) after the body, got {type(digest).__name__}")
            progress.done()
            verified = hmac.compare_digest(digest.value, checksum.digest())
            if verified:
                os.replace(temp_name, local)
            return Transfer("get", name, header.size, time.monotonic() - started, header.algorithm, verified)
        finally:
            if os.path.exists(temp_name):
                os.unlink(temp_name)

    def put(self, local: Path, name: str) -> Transfer:
        with open(local, "rb") as source:
            size = os.fstat(source.fileno()).st_size
            self.conn.send(p.Command("put", name))
            self._reply()  # "ready", or FtpError before a byte of the file is sent
            checksum = p.new_checksum(self.algorithm)
            progress = self._progress(f"put {name}", size)
            started = time.monotonic()

            def account(piece: memoryview) -> None:
                checksum.update(piece)
                progress.advance(len(piece))

            try:
                self.conn.send(p.FileHeader(size, self.algorithm))
                self.conn.send_body(source, size, account)
                self.conn.send(p.Digest(checksum.digest()))
            except OSError:
                # The server may have said why before it closed: prefer its words.
                self._raise_pending_error()
                raise
        progress.done()
        try:
            self._reply()
        except FtpError as exc:
            if exc.code == p.ErrorCode.CHECKSUM_MISMATCH:
                return Transfer("put", name, size, time.monotonic() - started, self.algorithm, False)
            raise
        return Transfer("put", name, size, time.monotonic() - started, self.algorithm, True)

    def _raise_pending_error(self) -> None:
        try:
            self.conn.sock.settimeout(1.0)
            reply = self.conn.receive()
        except (OSError, ProtocolError):
            return
        if isinstance(reply, p.Error):
            raise FtpError(reply)


def file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


HELP = """commands:
  get NAME [LOCAL]      download NAME (to LOCAL, default: its base name)
  put LOCAL [NAME]      upload LOCAL (as NAME, default: its base name)
  ls [DIR]              list the served folder
  checksum sha256|md5   checksum for the transfers that follow
  check LOCAL HEX       verify a local file against a known sha256 or md5 digest
  help, quit"""


class Session:
    """Runs command lines against a connected client; prints results."""

    def __init__(self, client: FtpClient, workdir: Path, out: TextIO = sys.stdout) -> None:
        self.client, self.workdir, self.out = client, workdir, out

    def run_line(self, line: str) -> bool:
        """Run one command line; False when it failed."""
        words = shlex.split(line, comments=True)
        if not words:
            return True
        verb, args = words[0].lower(), words[1:]
        try:
            return self._run(verb, args)
        except FtpError as exc:
            print(f"error: {exc}", file=sys.stderr)
        except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            print(f"error: {exc.strerror}: {exc.filename}", file=sys.stderr)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
        return False

    def _run(self, verb: str, args: list[str]) -> bool:
        c = self.client
        if verb == "get" and 1 <= len(args) <= 2:
            local = self.workdir / (args[1] if len(args) == 2 else Path(args[0]).name)
            return self._report(c.get(args[0], local))
        if verb == "put" and 1 <= len(args) <= 2:
            return self._report(c.put(self.workdir / args[0], args[1] if len(args) == 2 else Path(args[0]).name))
        if verb == "ls" and len(args) <= 1:
            listing = c.ls(*args)
            print(listing if listing else "(empty)", file=self.out)
            return True
        if verb == "checksum" and len(args) == 1:
            c.set_checksum(args[0])
            print(f"checksum: {args[0]}", file=self.out)
            return True
        if verb == "check" and len(args) == 2:
            return self._check(self.workdir / args[0], args[1].lower())
        if verb == "help":
            print(HELP, file=self.out)
            return True
        raise ValueError(f"cannot run {' '.join([verb, *args])!r}; type 'help'")

    def _report(self, transfer: Transfer) -> bool:
        print(transfer.summary(), file=self.out)
        if not transfer.verified:
            # A failure says so on stderr, as every other failure does: MISMATCH on stdout is not enough.
            print(f"error: {transfer.verb} {transfer.name}: the {transfer.algorithm} of the bytes that arrived "
                  "differs from the sender's; nothing was kept", file=sys.stderr)
        return transfer.verified

    def _check(self, path: Path, expected: str) -> bool:
        algorithm = {64: "sha256", 32: "md5"}.get(len(expected))
        if algorithm is None:
            raise ValueError("check wants a sha256 (64 hex digits) or md5 (32 hex digits) digest")
        actual = file_digest(path, algorithm)
        ok = actual == expected
        print(f"check {path.name}: {algorithm} {'matches the expected digest' if ok else 'MISMATCH: ' + actual}", file=self.out)
        return ok


def _lines(args: argparse.Namespace) -> tuple[Iterable[str], bool]:
    """The command lines to run, and whether to stop at the first failure."""
    if args.command:
        return [shlex.join(args.command)], True
    if args.script:
        return Path(args.script).read_text().splitlines(), True
    if sys.stdin.isatty():
        def prompt() -> Iterable[str]:
            while True:
                try:
                    yield input("ftp> ")
                except EOFError:
                    print()
                    return
        return prompt(), False
    return sys.stdin, True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="server", help="server name or address (default: %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORTS["ftp"], help="TCP port (default: %(default)s)")
    parser.add_argument("--checksum", default=p.DEFAULT_CHECKSUM, choices=sorted(p.CHECKSUMS),
                        help="checksum of transfers (default: %(default)s)")
    parser.add_argument("--dir", default=".", help="local folder for downloads and uploads (default: current)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the server (default: %(default)s)")
    parser.add_argument("--script", help="run the commands in this file, stopping at the first failure")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="one command to run, e.g. get big.bin (none: prompt)")


def main(args: argparse.Namespace) -> int:
    lines, stop_on_failure = _lines(args)
    failures = 0
    try:
        with FtpClient(args.host, args.port, args.checksum, args.timeout) as client:
            session = Session(client, Path(args.dir))
            for line in lines:
                if line.strip().lower() in ("quit", "exit"):
                    break
                if not session.run_line(line):
                    failures += 1
                    if stop_on_failure:
                        break
            client.quit()
    except (OSError, ProtocolError) as exc:
        reason = failure_reason(exc)
        if isinstance(exc, socket.timeout):
            # A server that vanishes with its network (a killed container)
            # sends no FIN or RST: silence is all the client ever sees.
            reason = f"no answer from the server for {args.timeout:g} s (stopped, or unreachable)"
        print(f"error: connection to {args.host}:{args.port} failed: {reason}", file=sys.stderr)
        return 2
    return 1 if failures else 0
