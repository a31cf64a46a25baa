"""Wire format of the http exercise: HTTP/1.1 messages, parsed without sockets.

Pure code in the style of h11: bytes in, events out; events in, bytes out.
The server, the client and the tests share it.

A message is a head -- a start line and header lines, each ending in CRLF,
then an empty line -- and, maybe, a body::

    client -> GET /index.html HTTP/1.1\\r\\n          request line
              Host: server:8080\\r\\n                 header lines
              \\r\\n                                  end of the head
    server -> HTTP/1.1 200 OK\\r\\n                   status line
              Content-Type: text/html\\r\\n
              Content-Length: 120\\r\\n               where the body ends
              \\r\\n
              <120 bytes of body>
    client -> HEAD /about.txt HTTP/1.1\\r\\n          same connection (keep-alive)
              Host: server:8080\\r\\n
              Connection: close\\r\\n                 "the last one"
              \\r\\n
    server -> HTTP/1.1 200 OK\\r\\n
              Content-Length: 42\\r\\n                the size a GET would get...
              Connection: close\\r\\n
              \\r\\n                                  ...but a HEAD answer has no body
    server closes the connection

Where a message ends is the whole difficulty, as with every stream protocol
(the tutorials' sticky-packet problem): the head ends at the first empty
line, the body after Content-Length bytes -- or, for a response without one,
when the server closes the connection. A decoder holds whatever ``recv``
returned beyond the message for the next one, so requests pipelined into one
read come out one by one.

Every read is bounded: a request line over MAX_REQUEST_LINE (414), a header
line over MAX_HEADER_LINE, more than MAX_HEADERS headers or a head over
MAX_HEAD (431), a request body over the decoder's ``max_body`` (413) is
refused as soon as it is seen, without waiting for the rest. Each refusal is
an ``HttpError`` carrying the status a server should answer with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from http import HTTPStatus  # absolute: the standard library's http, not this package
from typing import Iterable, Union

from socklab.framing import NEED_DATA, LocalProtocolError, RemoteProtocolError

MAX_REQUEST_LINE = 8 * 1024
MAX_HEADER_LINE = 8 * 1024
MAX_HEADERS = 100
MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024  # a static file server has no use for request bodies

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VERSION = re.compile(rb"HTTP/(\d)\.(\d)")
_STATUS = re.compile(rb"(\d{3})(?: (.*))?")
_FIELD_VALUE_BAD = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # control characters but TAB


class HttpError(RemoteProtocolError):
    """The peer sent something we refuse; ``status`` is what a server answers."""

    def __init__(self, status: int, message: str) -> None:
        self.status = HTTPStatus(status)
        super().__init__(f"{self.status.value} {self.status.phrase}: {message}")
        self.detail = message


class Headers(tuple):
    """(name, value) pairs in the order sent; names keep their case, lookups ignore it."""

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self.get_all(name)
        return ", ".join(values) if values else default

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for n, v in self if n.lower() == name]

    def tokens(self, name: str) -> set[str]:
        """The comma-separated tokens of a header, lower-cased: Connection: close, Upgrade."""
        return {t.strip().lower() for v in self.get_all(name) for t in v.split(",") if t.strip()}


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    headers: Headers = Headers()
    version: str = "HTTP/1.1"
    body: bytes = b""

    @property
    def keep_alive(self) -> bool:
        return keep_alive(self.version, self.headers)


@dataclass(frozen=True)
class Response:
    """A response head; its body follows as ``Data`` events, then ``EndOfMessage``."""

    status: int
    headers: Headers = Headers()
    reason: str = ""
    version: str = "HTTP/1.1"

    @property
    def keep_alive(self) -> bool:
        return keep_alive(self.version, self.headers)


@dataclass(frozen=True)
class Data:
    data: bytes


@dataclass(frozen=True)
class EndOfMessage:
    pass


Event = Union[Request, Response, Data, EndOfMessage]


def keep_alive(version: str, headers: Headers) -> bool:
    """Whether the connection stays open after this message.

    HTTP/1.1 keeps it unless a side says ``Connection: close``; HTTP/1.0
    closes it unless a side asks for ``Connection: keep-alive``.
    """
    tokens = headers.tokens("Connection")
    if version == "HTTP/1.1":
        return "close" not in tokens
    return "keep-alive" in tokens


# --- encoding -----------------------------------------------------------------


def _check_field(kind: str, text: str) -> None:
    # A CR or LF in a header value would let whoever chose it inject headers
    # (or a whole second response): refuse rather than send it.
    if _FIELD_VALUE_BAD.search(text):
        raise LocalProtocolError(f"{kind} {text!r} contains a control character")


def _head(start_line: str, headers: Iterable[tuple[str, str]]) -> bytes:
    _check_field("start line", start_line)
    lines = [start_line]
    for name, value in headers:
        if not _TOKEN.fullmatch(name.encode("latin-1", "replace")):
            raise LocalProtocolError(f"header name {name!r} is not a token")
        _check_field("header value", value)
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def encode(event: Event) -> bytes:
    """The bytes of ``event``: a whole request, a response head, or body data."""
    if isinstance(event, Request):
        if " " in event.target or not event.target:
            raise LocalProtocolError(f"request target {event.target!r} is empty or contains a space")
        return _head(f"{event.method} {event.target} {event.version}", event.headers) + event.body
    if isinstance(event, Response):
        reason = event.reason or _phrase(event.status)
        return _head(f"{event.version} {event.status} {reason}", event.headers)
    if isinstance(event, Data):
        return bytes(event.data)
    if isinstance(event, EndOfMessage):
        return b""
    raise LocalProtocolError(f"cannot encode {event!r}")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


# --- decoding -----------------------------------------------------------------


class _HeadReader:
    """Collects the lines of one head from a buffer, checking every limit on the way.

    Remembers how far it has scanned, so feeding a head byte by byte costs
    linear time, not quadratic.
    """

    def __init__(self, first_line_limit: int, first_line_status: int) -> None:
        self.first_line_limit = first_line_limit
        self.first_line_status = first_line_status
        self.lines: list[bytes] = []
        self.scanned = 0

    def read(self, buffer: bytearray) -> int | None:
        """The length of the head at the start of ``buffer`` once whole, else None."""
        while True:
            end = buffer.find(b"\n", self.scanned)
            line_len = (end if end >= 0 else len(buffer)) - self.scanned
            self._check_limits(line_len, whole=end >= 0)
            if end < 0:
                return None
            line = bytes(buffer[self.scanned : end]).removesuffix(b"\r")
            self.scanned = end + 1
            if not line:
                if not self.lines:  # RFC 9112 2.2: ignore empty lines before a request line
                    continue
                return self.scanned
            self.lines.append(line)
            if len(self.lines) - 1 > MAX_HEADERS:
                raise HttpError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, f"more than {MAX_HEADERS} header lines")

    def _check_limits(self, line_len: int, whole: bool) -> None:
        # Checked on the partial line too: a line that is already too long is
        # refused now, not after the peer has sent a gigabyte of it.
        if not self.lines:
            if line_len > self.first_line_limit:
                raise HttpError(self.first_line_status, f"the first line is over {self.first_line_limit} bytes")
        elif line_len > MAX_HEADER_LINE:
            raise HttpError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, f"a header line is over {MAX_HEADER_LINE} bytes")
        if self.scanned + line_len > MAX_HEAD:
            raise HttpError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, f"the head is over {MAX_HEAD} bytes")


def _parse_version(raw: bytes) -> str:
    m = _VERSION.fullmatch(raw)
    if not m:
        raise HttpError(HTTPStatus.BAD_REQUEST, f"{raw[:40]!r} is not an HTTP version")
    if m.group(1) != b"1":
        raise HttpError(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, f"{raw.decode()} is not supported, only HTTP/1.x")
    return "HTTP/1.1" if m.group(2) != b"0" else "HTTP/1.0"  # 1.2+ is served as 1.1 (RFC 9110 2.5)


def _parse_headers(lines: list[bytes]) -> Headers:
    headers = []
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            raise HttpError(HTTPStatus.BAD_REQUEST, "obsolete line folding in a header")
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):  # also refuses "Name :", RFC 9112 5.1
            raise HttpError(HTTPStatus.BAD_REQUEST, f"malformed header line {line[:40]!r}")
        text = value.strip(b" \t").decode("latin-1")
        if _FIELD_VALUE_BAD.search(text):
            raise HttpError(HTTPStatus.BAD_REQUEST, f"control character in header {name.decode()}")
        headers.append((name.decode("ascii"), text))
    return Headers(headers)


def content_length(headers: Headers) -> int | None:
    """The announced body size; None when absent. Disagreeing or odd values are an error."""
    raw = headers.get_all("Content-Length")
    if not raw:
        return None
    # "5, 5" (a list of one repeated value) is allowed; anything else would let
    # two parsers disagree on where the body ends -- request smuggling.
    values = {v.strip() for v in ",".join(raw).split(",")}
    if len(values) != 1 or not re.fullmatch(r"[0-9]{1,18}", next(iter(values))):
        raise HttpError(HTTPStatus.BAD_REQUEST, f"bad Content-Length {', '.join(raw)[:40]!r}")
    return int(values.pop())


class _Decoder:
    """What the two decoders share: a buffer, and an error state like h11's."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._failed: HttpError | None = None
        self.body_remaining = 0

    @property
    def buffered(self) -> int:
        """Bytes received but not handed out yet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_event(self) -> Event | type(NEED_DATA):
        # After an error the stream has no trustworthy message boundary left:
        # every later call fails the same way.
        if self._failed:
            raise self._failed
        try:
            return self._next()
        except HttpError as exc:
            self._failed = exc
            raise

    def _next(self) -> Event | type(NEED_DATA):
        raise NotImplementedError

    def _take(self, n: int) -> bytes:
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data


class RequestDecoder(_Decoder):
    """The server side: bytes from a client in, whole ``Request`` events out.

    A request body (by Content-Length, at most ``max_body`` bytes) is part of
    the Request, so one event is one request.
    """

    def __init__(self, max_body: int = MAX_BODY) -> None:
        super().__init__()
        self.max_body = max_body
        self._head: _HeadReader | None = None
        self._pending: Request | None = None  # head parsed, body still arriving

    def _next(self) -> Request | type(NEED_DATA):
        if self._pending is None:
            self._head = self._head or _HeadReader(MAX_REQUEST_LINE, HTTPStatus.REQUEST_URI_TOO_LONG)
            end = self._head.read(self._buffer)
            if end is None:
                return NEED_DATA
            lines, self._head = self._head.lines, None
            del self._buffer[:end]
            self._pending = self._parse(lines)
            self.body_remaining = content_length(self._pending.headers) or 0
        if len(self._buffer) < self.body_remaining:
            return NEED_DATA
        body = self._take(self.body_remaining)
        request, self._pending, self.body_remaining = self._pending, None, 0
        return Request(request.method, request.target, request.headers, request.version, body)

    def _parse(self, lines: list[bytes]) -> Request:
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not parts[1]:
            raise HttpError(HTTPStatus.BAD_REQUEST, f"malformed request line {lines[0][:60]!r}")
        method, target, raw_version = parts
        version = _parse_version(raw_version)
        if not target.isascii() or any(c < 0x21 or c == 0x7F for c in target):
            raise HttpError(HTTPStatus.BAD_REQUEST, "the request target must be printable ASCII (percent-encode the rest)")
        headers = _parse_headers(lines[1:])
        if version == "HTTP/1.1" and len(headers.get_all("Host")) != 1:
            raise HttpError(HTTPStatus.BAD_REQUEST, "an HTTP/1.1 request needs exactly one Host header")
        if headers.get_all("Transfer-Encoding"):
            raise HttpError(HTTPStatus.NOT_IMPLEMENTED, "request bodies with Transfer-Encoding are not supported")
        size = content_length(headers) or 0
        if size > self.max_body:
            raise HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"a body of {size} bytes is over the {self.max_body}-byte limit")
        return Request(method.decode("ascii"), target.decode("ascii"), headers, version)


#: Responses that never have a body, whatever their headers say (RFC 9112 6.3).
NO_BODY = {HTTPStatus.NO_CONTENT, HTTPStatus.NOT_MODIFIED}


class ResponseDecoder(_Decoder):
    """The client side: a ``Response`` head, ``Data`` pieces, ``EndOfMessage``.

    Call ``expect(method)`` before each response (the answer to HEAD has no
    body) and ``feed_eof()`` when ``recv`` returns ``b''``: a response without
    Content-Length ends only when the server closes.
    """

    def __init__(self) -> None:
        super().__init__()
        self._method = "GET"
        self._head: _HeadReader | None = None
        self._state = "head"  # head | length | until-close | done
        self._eof = False

    def expect(self, method: str) -> None:
        if self._state not in ("head", "done"):
            raise LocalProtocolError("the previous response is not finished")
        self._method, self._state = method, "head"

    def feed_eof(self) -> None:
        self._eof = True

    @property
    def until_close(self) -> bool:
        """Whether the body being read ends only when the connection does."""
        return self._state == "until-close"

    def _next(self) -> Event | type(NEED_DATA):
        if self._state == "head":
            return self._next_head()
        if self._state == "length":
            if not self.body_remaining:
                self._state = "done"
                return EndOfMessage()
            if not self._buffer:
                if self._eof:
                    raise HttpError(HTTPStatus.BAD_GATEWAY, f"connection closed with {self.body_remaining} body bytes still to come")
                return NEED_DATA
            piece = self._take(min(len(self._buffer), self.body_remaining))
            self.body_remaining -= len(piece)
            return Data(piece)
        if self._state == "until-close":
            if self._buffer:
                return Data(self._take(len(self._buffer)))
            if self._eof:
                self._state = "done"
                return EndOfMessage()
            return NEED_DATA
        raise LocalProtocolError("call expect() before reading the next response")

    def _next_head(self) -> Response | type(NEED_DATA):
        self._head = self._head or _HeadReader(MAX_HEADER_LINE, HTTPStatus.BAD_GATEWAY)
        end = self._head.read(self._buffer)
        if end is None:
            if self._eof:
                raise HttpError(HTTPStatus.BAD_GATEWAY, "connection closed before a whole response head"
                                if self._buffer else "connection closed without a response")
            return NEED_DATA
        lines, self._head = self._head.lines, None
        del self._buffer[:end]
        raw_version, _, rest = lines[0].partition(b" ")
        m = _STATUS.fullmatch(rest)
        if not m:
            raise HttpError(HTTPStatus.BAD_GATEWAY, f"malformed status line {lines[0][:60]!r}")
        status = int(m.group(1))
        try:  # the same checks as for a request; 502 is what a proxy would answer
            version = _parse_version(raw_version)
            headers = _parse_headers(lines[1:])
            size = content_length(headers)
        except HttpError as exc:
            raise HttpError(HTTPStatus.BAD_GATEWAY, exc.detail) from None
        response = Response(status, headers, (m.group(2) or b"").decode("latin-1"), version)
        if self._method == "HEAD" or status < 200 or status in NO_BODY:
            self._state, self.body_remaining = "length", 0
        elif headers.get_all("Transfer-Encoding"):
            raise HttpError(HTTPStatus.BAD_GATEWAY, "responses with Transfer-Encoding (chunked) are not supported")
        else:
            self._state = "until-close" if size is None else "length"
            self.body_remaining = size or 0
        return response
