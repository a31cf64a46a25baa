"""An HTTP/1.1 client written on the socket: requests out, status, headers, body in.

Several paths go over one connection (keep-alive); the last request says
``Connection: close``, so the server closes first and its FIN is in the
capture. Output is like ``curl -v``: ``*`` what happens to the connection,
``>`` the request head, ``<`` the response head, then the body.

Usage, from the client container::

    python -m socklab client http --host server / /about.txt   # one connection
    python -m socklab client http --head /index.html
    python -m socklab client http --expect 404 /missing.html
    python -m socklab client http http://server:8080/          # a URL works too
    python -m socklab client http --body-only / > page.html     # the report on stderr

Exit status: 0 when every request got a response (with ``--fail``: a status
below 400; with ``--expect N``: status N), 1 when one did not qualify, 2 when
the connection or the protocol failed.
"""

from __future__ import annotations

import argparse
import hashlib
import socket
import sys
from dataclasses import dataclass
from typing import BinaryIO, Callable

from socklab import DEFAULT_PORTS
from socklab.connection import failure_reason
from socklab.framing import NEED_DATA, ProtocolError
from socklab.http import protocol as p

CHUNK = 64 * 1024


@dataclass
class Exchange:
    request: p.Request
    response: p.Response
    size: int  # body bytes received


class HttpClient:
    """One server; a connection opened when needed and kept while the server allows."""

    def __init__(self, host: str, port: int = DEFAULT_PORTS["http"], timeout: float = 30.0,
                 log: Callable[[str], None] = lambda line: None) -> None:
        self.host, self.port, self.timeout, self.log = host, port, timeout, log
        self.sock: socket.socket | None = None
        self.connections = 0
        named = f"[{host}]" if ":" in host else host
        self.host_header = named if port == 80 else f"{named}:{port}"

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _connect(self) -> None:
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self.decoder = p.ResponseDecoder()
        self.connections += 1
        self.log(f"* connected to {self.host} port {self.port} (from {self.sock.getsockname()[1]})")

    def request(self, method: str, target: str, headers: list[tuple[str, str]] = (), last: bool = False,
                sink: Callable[[bytes], object] = lambda data: None) -> Exchange:
        """Send one request; ``sink`` gets the body piece by piece."""
        if self.sock is None:
            self._connect()
        else:
            self.log(f"* reusing the connection to {self.host} port {self.port}")
        all_headers = [("Host", self.host_header), ("User-Agent", "socklab"), ("Accept", "*/*"), *headers]
        if last:
            all_headers.append(("Connection", "close"))  # tell the server: nothing more is coming
        request = p.Request(method, target, p.Headers(all_headers))
        self.sock.sendall(p.encode(request))
        self.log(head_lines(">", f"{method} {target} {request.version}", request.headers).rstrip("\n"))
        self.decoder.expect(method)
        response = self._next()
        self.log(head_lines("<", f"{response.version} {response.status} {response.reason}".rstrip(),
                            response.headers).rstrip("\n"))
        # Decided now: once the body is read, the decoder no longer knows it
        # ran until the close.
        closing = last or not response.keep_alive or self.decoder.until_close
        size = 0
        while not isinstance(event := self._next(), p.EndOfMessage):
            size += len(event.data)
            sink(event.data)
        if closing:
            self.log("* closing the connection" + (" (its end marked the end of the body)" if size and not
                                                   response.headers.get("Content-Length") else ""))
            self.close()
        return Exchange(request, response, size)

    def _next(self) -> p.Event:
        while True:
            event = self.decoder.next_event()
            if event is not NEED_DATA:
                return event
            data = self.sock.recv(CHUNK)
            if data:
                self.decoder.feed(data)
            else:
                self.decoder.feed_eof()  # may end a body that runs until the close


def head_lines(prefix: str, start: str, headers: p.Headers) -> str:
    lines = [start, *(f"{n}: {v}" for n, v in headers), ""]
    return "".join(f"{prefix} {line}".rstrip() + "\n" for line in lines)


def split_target(text: str) -> tuple[str | None, int | None, str]:
    """``/path`` -> (None, None, /path); ``http://host:port/path`` -> (host, port, /path)."""
    if not text.lower().startswith("http://"):
        if not text.startswith("/"):
            raise ValueError(f"{text!r}: give a path starting with / or an http:// URL")
        return None, None, text
    rest = text[len("http://"):]
    authority, slash, path = rest.partition("/")
    host, _, port = authority.rpartition(":") if authority.rpartition(":")[2].isdigit() else (authority, "", "")
    if not host:
        raise ValueError(f"{text!r}: no host in the URL")
    return host.strip("[]"), int(port) if port else 80, slash + path if slash else "/"


def plan(args: argparse.Namespace) -> tuple[str, int, list[str]]:
    """Host, port and targets: from URLs if given (all for one server), else from the options."""
    host, port, targets = None, None, []
    for text in args.targets or ["/"]:
        h, pt, target = split_target(text)
        if h is not None:
            if host is not None and (h, pt) != (host, port):
                raise ValueError("all URLs must be on one server: they share one connection")
            host, port = h, pt
        targets.append(target)
    return host or args.host, port or args.port, targets


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not 'Name: value'")
    return name.strip(), value.strip()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="server", help="server name or address (default: %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORTS["http"], help="TCP port (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the server (default: %(default)s)")
    parser.add_argument("-X", "--method", default="GET", help="request method (default: %(default)s)")
    parser.add_argument("-I", "--head", action="store_true", help="send HEAD: the headers a GET would get, no body")
    parser.add_argument("-H", "--header", type=_header, action="append", default=[], metavar="'NAME: VALUE'",
                        help="an extra request header (repeatable)")
    parser.add_argument("--digest", action="store_true", help="print each body's size and SHA-256 instead of the body")
    parser.add_argument("--body-only", action="store_true",
                        help="only the bodies on stdout; the '*', '>' and '<' lines go to stderr (for scripts, make check)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--fail", action="store_true", help="exit 1 when a status is 400 or more")
    group.add_argument("--expect", type=int, metavar="STATUS", help="exit 1 unless every status is STATUS")
    parser.add_argument("targets", nargs="*", metavar="PATH|URL", help="paths (or http:// URLs) to request, in order (default: /)")


class Output:
    """Body bytes and report lines on one binary stream; a line always starts on a new line."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.at_line_start = True

    def write(self, data: bytes) -> None:
        if data:
            self.stream.write(data)
            self.stream.flush()
            self.at_line_start = data.endswith(b"\n")

    def line(self, text: str) -> None:
        # A body need not end with a newline (hello world does not).
        self.write((b"" if self.at_line_start else b"\n") + text.encode() + b"\n")


def run(args: argparse.Namespace, stream: BinaryIO) -> int:
    host, port, targets = plan(args)
    method = "HEAD" if args.head else args.method.upper()
    out = Output(stream)
    report = (lambda line: print(line, file=sys.stderr, flush=True)) if args.body_only else out.line
    failed = []
    with HttpClient(host, port, args.timeout, log=report) as client:
        for i, target in enumerate(targets):
            checksum = hashlib.sha256()

            def sink(data: bytes) -> None:
                checksum.update(data)
                if not args.digest:
                    out.write(data)

            exchange = client.request(method, target, args.header, last=i == len(targets) - 1, sink=sink)
            if args.digest and exchange.size:
                out.line(f"(body: {exchange.size} bytes, sha256 {checksum.hexdigest()})")
            status = exchange.response.status
            if (args.fail and status >= 400) or (args.expect is not None and status != args.expect):
                failed.append(f"{target}: {status}")
    req_word = "request" if len(targets) == 1 else "requests"
    conn_word = "connection" if client.connections == 1 else "connections"
    report(f"* {len(targets)} {req_word} on {client.connections} {conn_word}")
    if failed:
        wanted = f"status {args.expect}" if args.expect is not None else "a status below 400"
        print(f"error: wanted {wanted}, got {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def main(args: argparse.Namespace) -> int:
    try:
        host, port, _ = plan(args)
        sys.stdout.flush()
        return run(args, sys.stdout.buffer)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ProtocolError) as exc:
        reason = failure_reason(exc)
        print(f"error: HTTP exchange with {host}:{port} failed: {reason}", file=sys.stderr)
        return 2
