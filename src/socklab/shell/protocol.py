"""Wire format of the shell exercise (half an SSH): three framings of one reply.

Pure code, no sockets: the server, the client and the tests all use it.

Client to server, in every framing: lines of UTF-8 ending in ``\\n``. The
first line may choose the framing of the connection's replies; without it the
server uses its own ``--framing`` (so ``nc`` works as a client)::

    framing naive|ack|length\\n       optional, first line only
    <command line>\\n                 run by ``sh -c`` on the server
    ack\\n                            ack framing only: "send me the output"

A command line contains no newline, so a line is a whole command. The lesson
is in the other direction, the reply, which each framing carries differently.

**naive** -- the tutorials' first version. The byte length of the output as
decimal ASCII with nothing after it, then the output, back to back::

    +-------------------+--------------------------+
    | b"12"             | b"hello world\\n"         |
    | decimal, no end   | `length` bytes of output |
    +-------------------+--------------------------+

Their client reads the length with one ``recv(1024)``, assuming it arrives
alone. TCP is a byte stream: when the output is already in the client's
buffer, that one recv returns ``b"12hello world\\n"`` and ``int()`` of it
fails -- or, worse, when the output starts with a digit (``printf 7`` sends
``b"17"``) it reads the wrong length and waits for bytes that never come.
That is the sticky-packet problem (粘包). Our naive server writes length and
output in one ``sendall``: TCP may always deliver two sends as one read, and
does so whenever the receiver is slower than the sender; one write makes the
lab's failure happen every run instead of once in a while.

**ack** -- the tutorials' fix. The same bytes, but the server waits for the
client's ``ack\\n`` between the length and the output, so nothing can follow
the length in the stream until the client has read it. It costs a round trip
per command, and still assumes a few bytes always arrive in one recv, which
is very likely, not promised.

**length** -- the proper fix. A fixed-size binary header, then stdout, then
stderr. The receiver always knows how many bytes to wait for, whatever recv
returns, and needs no round trip::

    +--------------+--------------+-------------+-------------+--------------+
    | stdout bytes | stderr bytes | exit status | flags       | elapsed (ms) |
    | uint32       | uint32       | int32       | uint32      | uint32       |
    +--------------+--------------+-------------+-------------+--------------+
    20 bytes, big-endian; then stdout, then stderr

    exit status: as subprocess's returncode (-9: killed by signal 9)
    flags:       1 TRUNCATED  the output reached the server's cap
                 2 TIMED_OUT  killed after the server's time limit
                 4 REFUSED    not run; stderr says why

The naive and ack framings carry a single blob: stdout, then stderr, then a
``[socklab] ...`` line for a non-zero status or a limit hit. Lengths count
bytes of that blob, never characters ("héllo" is 6 bytes).

Example, ``echo hi`` in each framing (-> client to server, <- back)::

    naive   -> b"framing naive\\n" b"echo hi\\n"
            <- b"3hi\\n"                   (one read: int(b"3hi\\n") fails)
    ack     -> b"framing ack\\n" b"echo hi\\n"
            <- b"3"
            -> b"ack\\n"
            <- b"hi\\n"
    length  -> b"framing length\\n" b"echo hi\\n"
            <- 00000003 00000000 00000000 00000000 0000000c  b"hi\\n"
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Union

from socklab import framing
from socklab.framing import NEED_DATA, Line, LocalProtocolError, RemoteProtocolError

FRAMINGS = ("naive", "ack", "length")
DEFAULT_FRAMING = "length"

MAX_LINE = 64 * 1024  # a command line longer than this is refused unread
TUTORIAL_RECV = 1024  # the tutorials' recv size for the length
MAX_LENGTH_DIGITS = 10  # 4 GiB: more digits is output glued to the length
ACK = b"ack\n"

HEADER = struct.Struct("!IIiII")
TRUNCATED, TIMED_OUT, REFUSED = 1, 2, 4


class Misparse(RemoteProtocolError):
    """The tutorials' reader got a length it cannot trust: length and output arrived merged."""

    code = "misparse"


@dataclass(frozen=True)
class Result:
    """What a command produced, as the length framing carries it."""

    stdout: bytes = b""
    stderr: bytes = b""
    status: int = 0
    flags: int = 0
    elapsed_ms: int = 0

    @property
    def truncated(self) -> bool:
        return bool(self.flags & TRUNCATED)

    @property
    def timed_out(self) -> bool:
        return bool(self.flags & TIMED_OUT)

    @property
    def refused(self) -> bool:
        return bool(self.flags & REFUSED)


def refusal(reason: str) -> Result:
    return Result(stderr=f"socklab: refused: {reason}\n".encode(), flags=REFUSED)


@dataclass(frozen=True)
class LengthAnnounced:
    """naive/ack: the length was read; in ack framing, the client now sends ACK."""

    size: int


@dataclass(frozen=True)
class Output:
    """naive/ack: the whole blob of output."""

    data: bytes


Event = Union[Line, Result, LengthAnnounced, Output]


# -- client to server -------------------------------------------------------

def hello(framing: str) -> bytes:
    if framing not in FRAMINGS:
        raise LocalProtocolError(f"unknown framing {framing!r} (known: {', '.join(FRAMINGS)})")
    return f"framing {framing}\n".encode()


def parse_hello(line: Line) -> str | None:
    """The framing a first line chooses, or None when it is a command."""
    word, _, name = line.data.partition(b" ")
    if word != b"framing":
        return None
    framing = name.strip().decode("ascii", "replace")
    if framing not in FRAMINGS:
        raise RemoteProtocolError(f"unknown framing {framing!r} (known: {', '.join(FRAMINGS)})")
    return framing


def encode_command(command: str) -> bytes:
    data = command.encode()
    if b"\n" in data or b"\r" in data:
        raise LocalProtocolError("a command line cannot contain a newline (one line is one command)")
    if not data.strip():
        # The tutorials' reason: send(b"") sends nothing, so the server's recv
        # never returns and both sides wait for ever. Our lines would survive
        # it, but there is nothing to run.
        raise LocalProtocolError("empty command: nothing to run")
    if len(data) >= MAX_LINE:
        raise LocalProtocolError(f"command of {len(data)} bytes is over the {MAX_LINE}-byte limit")
    return data + b"\n"


class LineDecoder(framing.LineDecoder):
    """Client-to-server lines: at most MAX_LINE bytes; a CR before the LF (nc, telnet) is dropped."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        super().__init__(max_line, strip_cr=True)


# -- server to client: length framing ---------------------------------------

def encode_result(result: Result) -> bytes:
    header = HEADER.pack(len(result.stdout), len(result.stderr), result.status, result.flags, result.elapsed_ms)
    return header + result.stdout + result.stderr


class LengthDecoder:
    """Server-to-client bytes of the length framing -> ``Result`` events."""

    def __init__(self, max_output: int = 64 << 20) -> None:
        self.max_output = max_output
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_event(self) -> Result | type(NEED_DATA):
        if len(self._buffer) < HEADER.size:
            return NEED_DATA
        out_len, err_len, status, flags, elapsed = HEADER.unpack_from(self._buffer)
        if out_len + err_len > self.max_output:
            # Refused from the header alone: a peer cannot make us buffer what it claims.
            raise RemoteProtocolError(f"reply claims {out_len + err_len} bytes of output, over the {self.max_output}-byte limit")
        end = HEADER.size + out_len + err_len
        if len(self._buffer) < end:
            return NEED_DATA
        stdout = bytes(self._buffer[HEADER.size : HEADER.size + out_len])
        stderr = bytes(self._buffer[HEADER.size + out_len : end])
        del self._buffer[:end]
        return Result(stdout, stderr, status, flags, elapsed)


# -- server to client: naive and ack framings -------------------------------

def text_blob(result: Result) -> bytes:
    """The single blob the naive and ack framings carry for ``result``."""
    notes = []
    if result.timed_out:
        notes.append(f"killed after {result.elapsed_ms / 1000:.1f} s (time limit)")
    if result.truncated:
        notes.append(f"output truncated at {len(result.stdout) + len(result.stderr)} bytes")
    if result.status and not result.flags:  # our own kill needs no second note
        notes.append(f"exit status {result.status}")
    tail = "".join(f"[socklab] {note}\n" for note in notes).encode()
    return result.stdout + result.stderr + tail


def encode_text_length(blob: bytes) -> bytes:
    return str(len(blob)).encode("ascii")  # bytes, not characters; no terminator, as in the tutorials


class TutorialDecoder:
    """The tutorials' reader of the naive and ack framings, bugs included.

    In the length state, ``next_event()`` takes what has arrived (up to one
    recv(1024)) as the decimal length: whatever recv returned *is* the length,
    which holds only if the length arrived alone. Call it after every feed, as
    a client calls it after every recv. Then it waits for that many bytes of
    output. Raises ``Misparse`` when what it took is not a plausible length.
    """

    def __init__(self, max_output: int = 64 << 20) -> None:
        self.max_output = max_output
        self._buffer = bytearray()
        self.expected: int | None = None  # the announced length, once read

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_event(self) -> LengthAnnounced | Output | type(NEED_DATA):
        if self.expected is None:
            if not self._buffer:
                return NEED_DATA
            chunk = bytes(self._buffer[:TUTORIAL_RECV])
            del self._buffer[:TUTORIAL_RECV]
            self.expected = self._length(chunk)
            return LengthAnnounced(self.expected)
        if len(self._buffer) < self.expected:
            return NEED_DATA
        data = bytes(self._buffer[: self.expected])
        del self._buffer[: self.expected]
        self.expected = None
        return Output(data)

    def _length(self, chunk: bytes) -> int:
        if not chunk.isdigit() or len(chunk) > MAX_LENGTH_DIGITS:
            raise Misparse(f"expected a decimal length in the first read, got {chunk[:40]!r}"
                           f"{'...' if len(chunk) > 40 else ''}: length and output arrived merged in one recv "
                           "(the sticky-packet problem)")
        size = int(chunk)
        if size > self.max_output:
            raise Misparse(f"read a length of {size} bytes, over the {self.max_output}-byte limit: "
                           "digits of the output were probably glued to the length (sticky packets)")
        return size
