"""Wire format of the echo exercise: newline-terminated lines, both ways.

Pure code, no sockets: the server, the client and the inspector all use it.

The client sends a line; the server sends one line back, the same bytes
upper-cased (the tutorials' server) or, with ``--reply echo``, unchanged::

    +--------------------------------------+------+
    | line: any bytes except LF (0x0a)     | LF   |
    | at most MAX_LINE (64 KiB) bytes      | 1    |
    +--------------------------------------+------+

Example exchange (upper mode)::

    client -> "hello world\\n"
    server -> "HELLO WORLD\\n"
    client -> "héllo\\r\\n"          (nc -C, telnet: the CR is part of the line)
    server -> "HÉLLO\\r\\n"          (so it comes back too)
    client -> 70 000 bytes, no LF
    server -> "ERROR line-too-long: no end of line within 65536 bytes\\n", then closes

Why lines, when the ftp exercise uses a length header: an echo server is the
first thing one tries with a client nobody here wrote -- ``nc``, ``socat``,
``telnet`` -- and those send what is typed, ending each line with LF. A
length header would make every one of them useless. The newline is the
frame's end, so a decoder still copes with recv returning half a line or two
lines at once. The price is that a line cannot contain LF (binary data would
need escaping) and that the receiver must scan for the end, hence the bound:
without MAX_LINE a peer that never sends LF would make us buffer forever.

Upper-casing works on text when the line is valid UTF-8 ("é" -> "É") and on
ASCII letters only otherwise, so garbage comes back as garbage rather than
as an error. Upper-casing can lengthen text (at most 3 times in UTF-8:
"ΐ" -> "Ϊ́"), hence a larger bound, MAX_REPLY, for replies.

Errors: the server's last words, ``ERROR <code>: <message>`` and LF, just
before it closes. In echo mode a client may send that very text and get it
back: without a kind byte (see ftp) the wire cannot tell them apart, so a
client only takes a reply for an error when its own line did not start with
"ERROR". That trade-off -- nc compatibility against an unambiguous format --
is one of the lab's questions.
"""

from __future__ import annotations

from dataclasses import dataclass

from socklab import framing
from socklab.framing import LocalProtocolError

LF = b"\n"
MAX_LINE = 64 * 1024
MAX_REPLY = 3 * MAX_LINE
ERROR_PREFIX = b"ERROR "

REPLY_MODES = ("upper", "echo")


class ErrorCode:
    """The code of an ERROR line; each names why the server is closing."""

    LINE_TOO_LONG = "line-too-long"
    IDLE_TIMEOUT = "idle-timeout"


@dataclass(frozen=True)
class ServerError:
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class LineDecoder(framing.LineDecoder):
    """Lines of the echo exercise: at most MAX_LINE bytes, a CR kept as data."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        super().__init__(max_line)


def encode_line(data: bytes, max_line: int = MAX_LINE) -> bytes:
    """The bytes that carry ``data`` as one line; refuses what the peer would refuse."""
    if LF in data:
        raise LocalProtocolError("a line cannot contain a line feed: it would be two lines")
    if len(data) > max_line:
        raise LocalProtocolError(f"line of {len(data)} bytes exceeds the {max_line}-byte limit")
    return data + LF


def reply_to(line: bytes, mode: str = "upper") -> bytes:
    """What the server answers to ``line`` (without the LF)."""
    if mode == "echo":
        return line
    if mode != "upper":
        raise ValueError(f"unknown reply mode {mode!r} (known: {', '.join(REPLY_MODES)})")
    try:
        return line.decode("utf-8").upper().encode("utf-8")
    except UnicodeDecodeError:
        return line.upper()  # bytes.upper(): ASCII letters only, every other byte as is


def error_line(code: str, message: str) -> bytes:
    """An ERROR line: the server sends it, then closes."""
    return ERROR_PREFIX + f"{code}: {message}".encode() + LF


def as_error(reply: bytes, sent: bytes = b"") -> ServerError | None:
    """The ServerError that ``reply`` announces, or None when it is an ordinary reply.

    ``sent`` is the line this reply answers: if it started with "error " itself,
    the reply is its echo, not an error.
    """
    if not reply.startswith(ERROR_PREFIX) or sent[: len(ERROR_PREFIX)].upper() == ERROR_PREFIX:
        return None
    code, _, message = reply[len(ERROR_PREFIX) :].decode("utf-8", "replace").partition(": ")
    return ServerError(code, message.rstrip("\r"))
