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
    """The peer closed the connection (``recv`` returned ``b''``)."""

    def __init__(self, pending: int = 0) -> None:
        self.pending = pending
        if pending:
            msg = f"peer closed the connection in the middle of a message ({pending} bytes of it had arrived)"
        else:
            msg = "peer closed the connection"
        super().__init__(msg)
