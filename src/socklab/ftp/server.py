"""The FTP-like server: many clients at once, every path confined to one folder.

Downloads stream from disk. The first get of a file hashes it while sending;
the digest is remembered (digests.py, as web servers keep ETags), so later
gets of the unchanged file go out with ``sendfile``, no byte through Python.

An upload is written under a temporary name in the target folder and
renamed only once its checksum verifies, so a client that vanishes
mid-upload, a corrupted upload or a full disk never leaves a partial file
under the real name.
"""

from __future__ import annotations

import argparse
import errno
import hmac
import logging
import os
import tempfile
import time
from pathlib import Path

from socklab import DEFAULT_PORTS
from socklab.connection import Connection, failure_reason
from socklab.framing import RemoteProtocolError
from socklab.ftp import protocol as p
from socklab.ftp.digests import DigestCache, file_key, now_ns
from socklab.paths import PathRefused, resolve_inside
from socklab.samples import parse_size, write_sample
from socklab.server import LabHandler, LabTCPServer, logs_as, serve_forever

log = logging.getLogger("socklab")

UPLOAD_PREFIX = ".upload-"


class RequestFailed(Exception):
    """A request that fails with an E frame; the connection goes on."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.error = p.Error(code, message)


def _rate(size: int, seconds: float) -> str:
    return f"{size} bytes in {seconds:.2f} s ({size / max(seconds, 1e-9) / 1e6:.1f} MB/s)"


class FtpHandler(LabHandler):
    server: FtpServer

    def serve(self) -> None:
        self.conn = Connection(self.request, p.Decoder(), p.encode)
        self.algorithm = p.DEFAULT_CHECKSUM
        try:
            while True:
                message = self.conn.receive()
                if not isinstance(message, p.Command):
                    raise RemoteProtocolError(f"expected a command (C frame), got {type(message).__name__}")
                if message.verb == "quit":
                    log.info("%s quit", self.peer)
                    self.conn.send(p.Ok("bye"))
                    return
                try:
                    self.dispatch(message)
                except RequestFailed as failed:
                    log.info("%s %s: refused, %s", self.peer, message, failed)
                    self.conn.send(failed.error)
                except ConnectionError as exc:  # PeerClosed, or a send to a peer that left
                    log.warning("%s %s: cut short, %s; nothing was kept", self.peer, message, failure_reason(exc))
                    return
        except RemoteProtocolError as exc:
            # The stream can no longer be trusted to be framed: say why, then close.
            self._send_quietly(p.Error(p.ErrorCode.BAD_FRAME, str(exc)))
            raise

    def _send_quietly(self, message: p.Message) -> None:
        try:
            self.conn.send(message)
        except OSError:
            pass

    def dispatch(self, command: p.Command) -> None:
        handlers = {"get": self.get, "put": self.put, "ls": self.ls, "checksum": self.checksum}
        handler = handlers.get(command.verb)
        if handler is None:
            raise RequestFailed(p.ErrorCode.BAD_COMMAND, f"unknown command {command.verb!r} (try: {', '.join(p.VERBS)})")
        handler(command.argument)

    def resolve(self, name: str) -> Path:
        try:
            return resolve_inside(self.server.root, name)
        except PathRefused as exc:
            raise RequestFailed(p.ErrorCode.FORBIDDEN, str(exc)) from None

    def checksum(self, name: str) -> None:
        if name not in p.CHECKSUMS:
            raise RequestFailed(p.ErrorCode.BAD_COMMAND, f"unknown checksum {name!r} (known: {', '.join(p.CHECKSUMS)})")
        self.algorithm = name
        self.conn.send(p.Ok(f"checksum {name}"))

    def ls(self, name: str) -> None:
        folder = self.resolve(name) if name else Path(os.path.realpath(self.server.root))
        if not folder.is_dir():
            raise RequestFailed(p.ErrorCode.NOT_FOUND, f"no such folder: {name}")
        lines = []
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if entry.name.startswith(UPLOAD_PREFIX):
                continue  # uploads in progress are nobody's business yet
            try:
                if entry.is_dir():
                    lines.append(f"{'-':>12}  {entry.name}/")
                else:
                    lines.append(f"{entry.stat().st_size:>12}  {entry.name}")
            except OSError:
                continue  # e.g. a dangling link: not listable, not a reason to fail the rest
        self.conn.send(p.Ok("\n".join(lines)))

    def get(self, name: str) -> None:
        path = self.resolve(name)
        try:
            source = open(path, "rb")
        except FileNotFoundError:
            raise RequestFailed(p.ErrorCode.NOT_FOUND, f"no such file: {name}") from None
        except IsADirectoryError:
            raise RequestFailed(p.ErrorCode.IS_A_DIRECTORY, f"{name} is a folder") from None
        except OSError as exc:
            raise RequestFailed(p.ErrorCode.IO_ERROR, f"cannot open {name}: {exc.strerror}") from None
        with source:
            before = os.fstat(source.fileno())
            size = before.st_size
            started = time.monotonic()
            self.conn.send(p.FileHeader(size, self.algorithm))
            digest = self.server.digests.get(self.algorithm, before)
            if digest is not None:
                how = "sendfile, digest cached"
                self.conn.send_file(source, size)
                if file_key(os.fstat(source.fileno())) != file_key(before):
                    # The bytes sent may mix two versions. The cached digest is
                    # still the only honest one (it names the version we meant to
                    # send): a receiver of mixed bytes gets a mismatch, keeps nothing.
                    self.server.digests.forget(self.algorithm, before)
                    how = "sendfile, file CHANGED while sent"
            else:
                how = "hashed while sent"
                checksum = p.new_checksum(self.algorithm)
                hashing_started = now_ns()
                self.conn.send_body(source, size, checksum.update)
                digest = checksum.digest()
                # Not kept if the file changed while read: the digest covers what
                # was sent (so the receiver verifies it), but is no file's digest.
                self.server.digests.remember(self.algorithm, before, os.fstat(source.fileno()), digest, hashing_started)
            self.conn.send(p.Digest(digest))
        log.info("%s get %s: sent %s, %s %s (%s)", self.peer, name, _rate(size, time.monotonic() - started),
                 self.algorithm, digest.hex()[:16], how)

    def put(self, name: str) -> None:
        path = self.resolve(name)
        if path.is_dir():
            raise RequestFailed(p.ErrorCode.IS_A_DIRECTORY, f"{name} is a folder")
        if not path.parent.is_dir():
            raise RequestFailed(p.ErrorCode.NOT_FOUND, f"no such folder for {name}")
        self.conn.send(p.Ok("ready"))
        header = self.conn.receive()
        if not isinstance(header, p.FileHeader):
            raise RemoteProtocolError(f"expected a file header (F frame) after 'ready', got {type(header).__name__}")
        fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=UPLOAD_PREFIX)
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would follow the file through the rename
        try:
            self._receive_upload(name, path, header, os.fdopen(fd, "wb"), temp_name)
        finally:
            if os.path.exists(temp_name):
                os.unlink(temp_name)

    def _receive_upload(self, name: str, path: Path, header: p.FileHeader, target, temp_name: str) -> None:
        checksum = p.new_checksum(header.algorithm)
        write_error: OSError | None = None
        started = time.monotonic()

        def store(piece: memoryview) -> None:
            nonlocal write_error
            if write_error:
                return  # keep reading, so the stream stays framed and the client hears why
            try:
                target.write(piece)
                checksum.update(piece)
            except OSError as exc:
                write_error = exc

        with target:
            self.conn.receive_body(store)
            if not write_error:
                try:
                    target.flush()
                    os.fsync(target.fileno())
                except OSError as exc:
                    write_error = exc
        digest = self.conn.receive()
        if not isinstance(digest, p.Digest):
            raise RemoteProtocolError(f"expected a digest (D frame) after the file body, got {type(digest).__name__}")
        if write_error:
            code = p.ErrorCode.NO_SPACE if write_error.errno in (errno.ENOSPC, errno.EDQUOT) else p.ErrorCode.IO_ERROR
            raise RequestFailed(code, f"could not store {name}: {write_error.strerror}; nothing was kept")
        if not hmac.compare_digest(digest.value, checksum.digest()):
            raise RequestFailed(p.ErrorCode.CHECKSUM_MISMATCH,
                                f"{name}: {header.algorithm} of the received bytes differs from the client's; nothing was kept")
        os.replace(temp_name, path)
        log.info("%s put %s: received %s, %s verified", self.peer, name,
                 _rate(header.size, time.monotonic() - started), header.algorithm)
        self.conn.send(p.Ok(f"stored {name}: {header.size} bytes, {header.algorithm} verified"))


def remove_unfinished_uploads(root: Path) -> list[Path]:
    """Delete the temporary files of uploads a killed server left behind.

    A handler removes its temporary file however its upload ends -- unless
    the process itself dies (SIGKILL, out of memory, `docker stop` ending the
    handler threads with the process). Then the file stays, under its
    temporary name: nothing partial is ever under a real name, but the space
    must be given back, at the next start."""
    removed = []
    for leftover in root.rglob(f"{UPLOAD_PREFIX}*"):
        if leftover.is_file() and not leftover.is_symlink():
            leftover.unlink()
            removed.append(leftover)
    return removed


class FtpServer(LabTCPServer):
    def __init__(self, address: tuple[str, int], root: str, idle_timeout: float = 60.0) -> None:
        self.root = root
        self.digests = DigestCache()
        super().__init__(address, FtpHandler, idle_timeout)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORTS["ftp"], help="TCP port (default: %(default)s)")
    parser.add_argument("--root", default="/srv/files", help="the folder served; no path may leave it (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="close a connection that sends nothing for this many seconds (default: %(default)s)")
    parser.add_argument("--generate", action="append", default=[], metavar="NAME=SIZE",
                        help="before serving, write a sample file of reproducible content, e.g. big.bin=16MiB")


@logs_as("server")
def main(args: argparse.Namespace) -> int:
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    for leftover in remove_unfinished_uploads(root):
        log.warning("removed %s: an upload an earlier run did not finish", leftover.relative_to(root))
    for spec in args.generate:
        name, _, size = spec.partition("=")
        target = resolve_inside(root, name)
        write_sample(target, parse_size(size))
        log.info("generated %s (%s bytes)", name, target.stat().st_size)
    with FtpServer((args.host, args.port), str(root), args.timeout) as server:
        serve_forever(server, f"ftp server for {root}")
    return 0
