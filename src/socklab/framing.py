"""Pieces of framing that every exercise's wire format shares.

Pure code: bytes in, messages out. No socket is imported here, so the same
decoders serve the servers, the clients, the inspector (which decodes a
captured stream) and the unit tests (which feed bytes whole, one at a time,
and merged with the next frame).

A decoder is fed whatever ``recv`` returned -- part of a frame, or a frame and
a half -- and hands back whole messages. ``NEED_DATA`` means "feed me more":
that one return value is the cure for both the partial-recv and the
sticky-packet problems the tutorials run into.
"""

from __future__ import annotations

from dataclasses import dataclass


class _NeedData:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


#: Returned by a decoder's ``next_event()`` when it holds no whole message yet.
NEED_DATA = _NeedData()


class ProtocolError(Exception):
    """The conversation broke the wire format; ``code`` names the error kind."""

    code = "protocol-error"


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that do not follow the wire format."""

    code = "bad-frame"


class LocalProtocolError(ProtocolError):
    """We were about to send something the wire format does not allow."""


class PeerClosed(ConnectionError):
    """The peer went away: ``recv`` returned ``b''``, or the connection was reset."""

    def __init__(self, midway: str = "", reset: bool = False) -> None:
        #: what was left unfinished, e.g. "812 bytes of a file body still to come";
        #: empty when the peer left between two messages
        self.midway = midway
        how = "reset" if reset else "closed"  # RST (it left unread data, or crashed) or FIN
        super().__init__(f"peer {how} the connection" + (f" in the middle of a message: {midway}" if midway else ""))


@dataclass(frozen=True)
class Line:
    """One line, without its LF."""

    data: bytes


class LineDecoder:
    """Bytes -> ``Line`` events, for the wire formats whose messages are lines.

    More than ``max_line`` bytes without an LF raise ``RemoteProtocolError``,
    checked as bytes arrive: a peer that never sends a newline cannot make us
    buffer without end. ``strip_cr`` drops a CR before the LF, for peers such
    as telnet and some nc builds that end lines with CRLF.
    """

    #: Lines carry no unframed body; socklab.connection.Connection asks.
    body_remaining = 0

    def __init__(self, max_line: int, strip_cr: bool = False) -> None:
        self.max_line = max_line
        self.strip_cr = strip_cr
        self._buffer = bytearray()
        self._scanned = 0  # bytes known to hold no LF: fed byte by byte, each byte is scanned once

    @property
    def buffered(self) -> int:
        """Bytes received but not yet handed out."""
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_event(self) -> Line | _NeedData:
        end = self._buffer.find(b"\n", self._scanned, self.max_line + 1)
        if end < 0:
            self._scanned = len(self._buffer)
            if len(self._buffer) > self.max_line:
                raise RemoteProtocolError(f"no end of line within {self.max_line} bytes")
            return NEED_DATA
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        self._scanned = 0
        if self.strip_cr and line.endswith(b"\r"):
            line = line[:-1]
        return Line(line)
