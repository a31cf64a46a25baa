"""A small HTTP/1.1 file server written on the socket, not on http.server.

GET and HEAD of the files under one folder, many clients at once (a thread
each, from LabTCPServer), several requests per connection (keep-alive).

    accept -> HttpHandler.serve(): loop
        receive a request       bounded: RequestDecoder refuses 413/414/431...
                                timed: the whole head within --request-timeout
        locate the file         percent-decoded, then confined by resolve_inside
        answer                  small file: head + body in one send, the body
                                kept in memory for the next request (files.py);
                                big file: head + file in 64 KiB pieces
        Connection: close?      FIN, drain what the client still sends, close

A refusal the request's framing survives (403, 404, 405) keeps the connection;
one it does not (400, 413, 414, 431, 505...) is answered, then the connection
is closed, because where the next request would start is no longer known.
"""

from __future__ import annotations

import argparse
import functools
import logging
import mimetypes
import os
import socket
import stat
import time
from email.utils import formatdate
from http import HTTPStatus
from pathlib import Path
from typing import BinaryIO, Iterable
from urllib.parse import unquote

from socklab import DEFAULT_PORTS
from socklab.framing import NEED_DATA, LocalProtocolError, PeerClosed
from socklab.http import protocol as p
from socklab.http.files import FileCache
from socklab.paths import PathRefused, resolve_inside
from socklab.server import LabHandler, LabTCPServer, logs_as, serve_forever

log = logging.getLogger("socklab")

CHUNK = 64 * 1024  # per connection: a thousand clients cost 64 MiB, not a file each
LINGER_SECONDS = 2.0
LINGER_BYTES = 1 << 20
ALLOWED = ("GET", "HEAD")
INDEX = "index.html"


@functools.lru_cache(maxsize=1)
def http_date(second: int) -> str:
    """The Date header's value, computed once a second, not once a request."""
    return formatdate(second, usegmt=True)


@functools.lru_cache(maxsize=256)
def content_type(suffixes: str) -> str:
    """The Content-Type for a name ending in ``suffixes`` (".tar.gz"): mimetypes' guess, remembered."""
    return mimetypes.guess_type(f"file{suffixes}")[0] or "application/octet-stream"


class Refused(Exception):
    """A request answered with an error status; the connection may go on."""

    def __init__(self, status: int, detail: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        self.status = HTTPStatus(status)
        self.detail = detail
        self.headers = list(headers)
        super().__init__(f"{self.status.value} {detail}")


class HttpHandler(LabHandler):
    server: HttpServer

    def serve(self) -> None:
        self.decoder = p.RequestDecoder(self.server.max_body)
        self._buffer = bytearray(CHUNK)
        self._view = memoryview(self._buffer)
        while True:
            try:
                request = self.receive()
            except p.HttpError as exc:
                log.warning("%s refused: %s", self.peer, exc)
                self._send_quietly(self._error(exc.status, exc.detail, None))
                self._lingering_close()
                return
            # receive() may have left a short timeout (what remained of the
            # request deadline); a big file to a slow reader needs the full one.
            self._timeout(self.server.idle_timeout)
            try:
                size = self.respond(request)
                status = HTTPStatus.OK
            except Refused as exc:
                self.request.sendall(self._error(exc.status, exc.detail, request, exc.headers))
                status, size = exc.status, 0
            log.info('%s "%s %s %s" %d %d', self.peer, request.method, request.target, request.version,
                     status, size)
            if not request.keep_alive:
                log.info("%s closing the connection (%s)", self.peer,
                         "Connection: close" if request.version == "HTTP/1.1" else "HTTP/1.0 without keep-alive")
                self._lingering_close()
                return

    def receive(self) -> p.Request:
        """The next whole request. An idle client times out; so does a slow one.

        The idle timeout alone cannot stop a client that sends one byte every
        few seconds (slowloris): once a request has begun, the whole head must
        arrive before a deadline.
        """
        deadline = None
        while True:
            event = self.decoder.next_event()
            if event is not NEED_DATA:
                return event
            timeout = self.server.idle_timeout
            if self.decoder.buffered:
                deadline = deadline or time.monotonic() + self.server.request_timeout
                timeout = min(timeout, deadline - time.monotonic())
                if timeout <= 0:
                    raise p.HttpError(HTTPStatus.REQUEST_TIMEOUT, f"request not complete after {self.server.request_timeout:g} s")
            self._timeout(timeout)
            try:
                n = self.request.recv_into(self._buffer)
            except socket.timeout:
                if deadline is None:
                    raise  # idle between requests: LabHandler logs it and closes
                continue  # the deadline check above answers 408
            except ConnectionResetError:
                raise PeerClosed(self._midway(), reset=True) from None
            if n == 0:
                raise PeerClosed(self._midway())
            self.decoder.feed(self._view[:n])

    def _timeout(self, seconds: float) -> None:
        # Only when it changes: every settimeout() is a system call (the
        # socket's O_NONBLOCK is set again), twice per request otherwise.
        if seconds != self.request.gettimeout():
            self.request.settimeout(seconds)

    def _midway(self) -> str:
        return f"{self.decoder.buffered} bytes of a request had arrived" if self.decoder.buffered else ""

    def respond(self, request: p.Request) -> int:
        """Answer a request that parsed; returns the body size sent, or raises Refused."""
        if request.method not in ALLOWED:
            raise Refused(HTTPStatus.METHOD_NOT_ALLOWED, f"{request.method} is not served here",
                          [("Allow", ", ".join(ALLOWED))])
        name = self.requested_name(request.target)
        cached = self.server.files.get(name)
        if cached is not None:
            return self._send_head_and(request, cached.content_type, cached.body, len(cached.body))
        path, found = self.locate(name)
        source, st = self.open_file(path, found)
        with source:
            ctype = content_type("".join(path.suffixes))
            if st.st_size > self.server.files.max_file:
                if request.method == "HEAD":
                    return self._send_head_and(request, ctype, b"", st.st_size)
                self._send_file(self._head(request, ctype, st.st_size), source, st.st_size)
                return st.st_size
            # Small: read whole before the head is sent, so that Content-Length
            # is the length of the bytes read even if the file is being rewritten.
            body = source.read(st.st_size)
        self.server.files.put(name, str(path), st, body, ctype)
        return self._send_head_and(request, ctype, body, len(body))

    def _head(self, request: p.Request, ctype: str, size: int) -> bytes:
        return p.encode(p.Response(HTTPStatus.OK, self._headers(request, [
            ("Content-Type", ctype), ("Content-Length", str(size))])))

    def _send_head_and(self, request: p.Request, ctype: str, body: bytes, size: int) -> int:
        """The head, then the body unless the method is HEAD; the body's bytes sent."""
        # Head and body in one send: one segment for a small file, instead of
        # a head the client waits on Nagle to complete.
        head = self._head(request, ctype, size)
        if request.method == "HEAD":
            self.request.sendall(head)
            return 0
        self.request.sendall(head + body)
        return len(body)

    @staticmethod
    def requested_name(target: str) -> str:
        """The file name a request target asks for, decoded, relative to the served folder."""
        if target.startswith("/"):
            path = target.partition("?")[0].partition("#")[0]
        elif target.lower().startswith("http://"):  # absolute-form, which servers must accept
            path = "/" + target.split("/", 3)[3].partition("?")[0] if target.count("/") >= 3 else "/"
        else:
            raise Refused(HTTPStatus.BAD_REQUEST, "the target must be a path starting with / or an http:// URL")
        try:
            # Decode first, check after: %2e%2e is '..' once decoded, and that
            # is the name the file system would see.
            name = unquote(path, errors="strict")
        except UnicodeDecodeError:
            raise Refused(HTTPStatus.BAD_REQUEST, "percent-encoded bytes that are not UTF-8") from None
        # Only the one slash that starts every path is dropped: a decoded
        # "//etc/passwd" stays absolute, and resolve_inside refuses it.
        name = name[1:]
        if not name or name.endswith("/"):
            name += INDEX
        return name

    def locate(self, name: str) -> tuple[Path, str]:
        """The real path of a requested name, confined to the served folder, and the name
        it was found under: a folder means its index."""
        try:
            real = resolve_inside(self.server.root, name)
            if real.is_dir():
                name = f"{name}/{INDEX}"
                real = resolve_inside(self.server.root, name)
        except PathRefused as exc:
            raise Refused(HTTPStatus.FORBIDDEN, str(exc)) from None
        return real, name

    def open_file(self, path: Path, name: str) -> tuple[BinaryIO, os.stat_result]:
        """The file, opened for reading, and its fstat(); Refused if it is not a readable regular file."""
        try:
            # O_NONBLOCK: opening a FIFO someone left in the folder would
            # otherwise block this thread until a writer shows up.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise Refused(HTTPStatus.NOT_FOUND, f"no such file: /{name}") from None
        except PermissionError:
            raise Refused(HTTPStatus.FORBIDDEN, f"not readable: /{name}") from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise Refused(HTTPStatus.NOT_FOUND, f"not a regular file: /{name}")
        return os.fdopen(fd, "rb", buffering=0), st  # readinto() straight from the file, no second buffer

    def _send_file(self, head: bytes, source: BinaryIO, size: int) -> None:
        """A file too big to keep in memory: in CHUNK pieces, the head with the first."""
        pending, left = head, size
        while left:
            n = source.readinto(self._view[: min(CHUNK, left)])
            if not n:
                # Content-Length already promised `size` bytes: only closing is honest.
                raise LocalProtocolError(f"file shrank while being sent ({left} of {size} bytes missing)")
            self.request.sendall(pending + self._view[:n] if pending else self._view[:n])
            pending, left = b"", left - n

    def _headers(self, request: p.Request | None, extra: list[tuple[str, str]]) -> list[tuple[str, str]]:
        headers = [("Date", http_date(int(time.time()))), ("Server", "socklab"), *extra]
        if request is None or not request.keep_alive:
            headers.append(("Connection", "close"))
        elif request.version == "HTTP/1.0":
            headers.append(("Connection", "keep-alive"))  # 1.0 closes unless told otherwise
        return headers

    def _error(self, status: HTTPStatus, detail: str, request: p.Request | None,
               extra: Iterable[tuple[str, str]] = ()) -> bytes:
        body = f"{status.value} {status.phrase}\n{detail}\n".encode()
        headers = self._headers(request, [("Content-Type", "text/plain; charset=utf-8"),
                                          ("Content-Length", str(len(body))), *extra])
        head = p.encode(p.Response(status, headers))
        return head if request is not None and request.method == "HEAD" else head + body

    def _send_quietly(self, data: bytes) -> None:
        try:
            self.request.sendall(data)
        except OSError:
            pass  # the client is gone; it was leaving anyway

    def _lingering_close(self) -> None:
        """Send FIN, then read and drop what the client still sends, for a bounded time.

        close() on a socket with unread bytes in it makes the kernel send RST,
        and an RST can destroy our response in the client's buffers before it
        reads it (a 413 answered while the big body is still arriving).
        """
        try:
            self.request.shutdown(socket.SHUT_WR)
            deadline, drained = time.monotonic() + LINGER_SECONDS, 0
            while drained < LINGER_BYTES and (left := deadline - time.monotonic()) > 0:
                self.request.settimeout(left)
                n = self.request.recv_into(self._buffer)
                if not n:
                    break
                drained += n
        except OSError:
            pass


class HttpServer(LabTCPServer):
    def __init__(self, address: tuple[str, int], root: str, idle_timeout: float = 30.0,
                 request_timeout: float = 10.0, max_body: int = p.MAX_BODY) -> None:
        self.root = root
        self.request_timeout = request_timeout
        self.max_body = max_body
        self.files = FileCache()
        super().__init__(address, HttpHandler, idle_timeout)


DEMO_SITE = {
    INDEX: """<!doctype html>
<html>
<head><meta charset="utf-8"><title>socklab</title></head>
<body>
<h1>Hello from the socklab HTTP server</h1>
<p>This page came over a socket: a request line, headers, an empty line,
and the same again the other way with this body behind it.</p>
<p><a href="about.txt">about.txt</a></p>
</body>
</html>
""",
    "about.txt": "Served by socklab's HTTP/1.1 server, written on the socket.\n",
}


def write_demo_site(root: Path) -> None:
    """A small index.html and about.txt, each written only if missing."""
    for name, text in DEMO_SITE.items():
        target = resolve_inside(root, name)
        if not target.exists():
            target.write_text(text, encoding="utf-8")
            log.info("wrote %s (%d bytes)", name, target.stat().st_size)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORTS["http"], help="TCP port (default: %(default)s)")
    parser.add_argument("--root", default="/srv/files", help="the folder served; no path may leave it (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="close a connection idle for this many seconds (default: %(default)s)")
    parser.add_argument("--request-timeout", type=float, default=10.0,
                        help="answer 408 when a started request is not complete after this many seconds (default: %(default)s)")
    parser.add_argument("--demo-site", action="store_true", help="before serving, write index.html and about.txt if missing")


@logs_as("server")
def main(args: argparse.Namespace) -> int:
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    if args.demo_site:
        write_demo_site(root)
    with HttpServer((args.host, args.port), str(root), args.timeout, args.request_timeout) as server:
        serve_forever(server, f"http server for {root}")
    return 0
