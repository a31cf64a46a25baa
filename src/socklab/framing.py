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
