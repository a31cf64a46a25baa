"""Wire format of the FTP-like exercise: one TCP connection, framed messages.

Pure code, no sockets: the server, the client and the inspector all use it.

Every message is a frame, a 5-byte header and then the payload::

    +--------+---------------------+-----------------------+
    | kind   | length              | payload               |
    | 1 byte | 4 bytes, big-endian | `length` bytes        |
    +--------+---------------------+-----------------------+

    kind  sent by  payload
    C     client   a command, UTF-8: "get NAME", "put NAME", "ls [DIR]",
                   "checksum sha256|md5", "quit"
    O     server   success, UTF-8 text: "ready", a listing, "bye"...
    E     server   failure, UTF-8 "CODE: message" (CODE as in ErrorCode)
    F     sender   a file follows: its size (8 bytes, big-endian), then the
                   checksum's name in ASCII. Then exactly `size` raw bytes of
                   file body, not framed, then a D frame.
    D     sender   the file's checksum (the raw digest bytes)

A frame's length is at most MAX_PAYLOAD: a bigger one is refused before any of
it is read, so a peer cannot make us allocate what it claims. File bodies are
not frames: their size is bounded only by disk space, and they are streamed.

Example: download a 5-byte file, then leave::

    client -> C  len=9   "get a.txt"
    server -> F  len=14  size=5 "sha256"
    server ->    5 bytes "hello"
    server -> D  len=32  2cf24dba5fb0a30e...
    client -> C  len=4   "quit"
    server -> O  len=3   "bye"

Upload: the server first says whether it takes the name, so a refused upload
costs one round trip, not the whole file::

    client -> C  len=9   "put b.txt"
    server -> O  len=5   "ready"           (or E "forbidden: ...")
    client -> F, the body, D
    server -> O  "stored b.txt: 5 bytes"   (or E "checksum-mismatch: ...")

The tutorials' version sent the size as decimal text and then waited for the
client's "ready", because the size and the first bytes of the file could
arrive merged in one recv (the sticky-packet problem). A length-prefixed
header makes that round trip unnecessary: the decoder knows where each frame
ends whatever recv returns.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Callable, Union

from socklab.framing import NEED_DATA, LocalProtocolError, RemoteProtocolError

HEADER = struct.Struct("!cI")
FILE_SIZE = struct.Struct("!Q")
MAX_PAYLOAD = 64 * 1024

#: Checksums a sender may name in a file header. SHA-256 is the default; MD5
#: is what the tutorials used (fine against accidents, not against an attacker).
CHECKSUMS: dict[str, Callable[[], "hashlib._Hash"]] = {
    "sha256": hashlib.sha256,
    "md5": hashlib.md5,
}
DEFAULT_CHECKSUM = "sha256"

VERBS = ("get", "put", "ls", "checksum", "quit")


class ErrorCode:
    """The CODE part of an E frame; each names one way a request fails."""

    BAD_COMMAND = "bad-command"
    BAD_FRAME = "bad-frame"
    NOT_FOUND = "not-found"
    FORBIDDEN = "forbidden"
    IS_A_DIRECTORY = "is-a-directory"
    CHECKSUM_MISMATCH = "checksum-mismatch"
    NO_SPACE = "no-space"
    IO_ERROR = "io-error"


@dataclass(frozen=True)
class Command:
    verb: str
    argument: str = ""

    @classmethod
    def parse(cls, text: str) -> Command:
        verb, _, argument = text.strip().partition(" ")
        return cls(verb.lower(), argument.strip())

    def __str__(self) -> str:
        return f"{self.verb} {self.argument}".rstrip()


@dataclass(frozen=True)
class Ok:
    text: str = ""


@dataclass(frozen=True)
class Error:
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True)
class FileHeader:
    size: int
    algorithm: str = DEFAULT_CHECKSUM


@dataclass(frozen=True)
class Body:
    """A piece of a file body, as the decoder hands it out."""

    data: bytes


@dataclass(frozen=True)
class Digest:
    value: bytes


Message = Union[Command, Ok, Error, FileHeader, Digest]


def new_checksum(algorithm: str) -> hashlib._Hash:
    try:
        return CHECKSUMS[algorithm]()
    except KeyError:
        known = ", ".join(CHECKSUMS)
        raise ValueError(f"unknown checksum {algorithm!r} (known: {known})") from None


def _frame(kind: bytes, payload: bytes) -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise LocalProtocolError(f"{kind.decode()} frame of {len(payload)} bytes exceeds the {MAX_PAYLOAD}-byte limit")
    return HEADER.pack(kind, len(payload)) + payload


def _fit(text: bytes) -> bytes:
    if len(text) <= MAX_PAYLOAD:
        return text
    # "ignore": a character cut in half at the end is dropped, so the text stays UTF-8.
    return text[: MAX_PAYLOAD - 3].decode("utf-8", "ignore").encode() + b"..."


def encode(message: Message) -> bytes:
    """The bytes that carry ``message`` on the wire."""
    if isinstance(message, Command):
        return _frame(b"C", str(message).encode())
    if isinstance(message, Ok):
        return _frame(b"O", message.text.encode())
    if isinstance(message, Error):
        # An error may quote what the peer sent (an unknown command of 60 KiB):
        # cut to fit a frame, or the peer would get no answer at all.
        return _frame(b"E", _fit(str(message).encode()))
    if isinstance(message, FileHeader):
        new_checksum(message.algorithm)  # refuse to announce what we cannot compute
        return _frame(b"F", FILE_SIZE.pack(message.size) + message.algorithm.encode("ascii"))
    if isinstance(message, Digest):
        return _frame(b"D", message.value)
    raise LocalProtocolError(f"cannot encode {message!r}")


def _text(kind: str, payload: bytes) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(f"{kind} frame is not valid UTF-8 (byte {exc.start})") from None


def decode_payload(kind: bytes, payload: bytes) -> Message:
    """The message of one whole frame (header already removed)."""
    if kind == b"C":
        return Command.parse(_text("C", payload))
    if kind == b"O":
        return Ok(_text("O", payload))
    if kind == b"E":
        code, _, message = _text("E", payload).partition(": ")
        return Error(code, message)
    if kind == b"F":
        if len(payload) <= FILE_SIZE.size:
            raise RemoteProtocolError(f"F frame of {len(payload)} bytes is too short for a size and a checksum name")
        (size,) = FILE_SIZE.unpack_from(payload)
        algorithm = payload[FILE_SIZE.size :].decode("ascii", "replace")
        if algorithm not in CHECKSUMS:
            raise RemoteProtocolError(f"F frame names an unknown checksum {algorithm!r}")
        return FileHeader(size, algorithm)
    if kind == b"D":
        return Digest(payload)
    raise RemoteProtocolError(f"unknown frame kind {kind!r} (expected one of C O E F D)")


class Decoder:
    """Turns the bytes of one direction of a connection into messages.

    ``feed()`` whatever arrived; ``next_event()`` returns a message, a
    ``Body`` piece of a file, or ``NEED_DATA``. A ``FileHeader`` switches the
    decoder to the file body for ``size`` bytes; a ``Digest`` frame must follow.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self.max_payload = max_payload
        self._buffer = bytearray()
        self.body_remaining = 0
        self._digest_due = False

    @property
    def buffered(self) -> int:
        """Bytes received but not yet handed out."""
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_event(self) -> Message | Body | type(NEED_DATA):
        if self.body_remaining:
            if not self._buffer:
                return NEED_DATA
            n = min(len(self._buffer), self.body_remaining)
            piece = bytes(self._buffer[:n])
            del self._buffer[:n]
            self.body_remaining -= n
            if not self.body_remaining:
                self._digest_due = True
            return Body(piece)
        if len(self._buffer) < HEADER.size:
            return NEED_DATA
        kind, length = HEADER.unpack_from(self._buffer)
        if kind not in b"COEFD":
            raise RemoteProtocolError(f"unknown frame kind {kind!r} (expected one of C O E F D)")
        if length > self.max_payload:
            raise RemoteProtocolError(f"{kind.decode()} frame claims {length} bytes, over the {self.max_payload}-byte limit")
        end = HEADER.size + length
        if len(self._buffer) < end:
            return NEED_DATA
        payload = bytes(self._buffer[HEADER.size : end])
        del self._buffer[:end]
        message = decode_payload(kind, payload)
        if self._digest_due and not isinstance(message, Digest):
            raise RemoteProtocolError(f"expected a D frame after the file body, got {kind.decode()}")
        self._digest_due = False
        if isinstance(message, FileHeader):
            self.body_remaining = message.size
            self._digest_due = message.size == 0
        return message

    def consume_body(self, n: int) -> None:
        """Account for ``n`` body bytes the caller received directly.

        The fast path: once the buffer is empty, a receiver may ``recv_into``
        its own buffer (at most ``body_remaining`` bytes, so it never swallows
        the digest frame that follows) instead of feeding every byte through
        this decoder.
        """
        if self._buffer or n > self.body_remaining:
            raise LocalProtocolError("consume_body() needs an empty buffer and at most body_remaining bytes")
        self.body_remaining -= n
        if not self.body_remaining:
            self._digest_due = True
