"""A connected TCP socket plus a decoder: whole messages in, file bodies streamed.

The socket side of every TCP exercise. The wire format itself lives in the
exercise's pure ``protocol`` module; this class only moves bytes:

- ``receive()`` calls ``recv`` until the decoder has a whole message. Whatever
  ``recv`` returned beyond that message stays in the decoder for the next
  call, so a short read and two frames merged into one read both come out
  right.
- ``receive_body()`` and ``send_body()`` stream a file body through one
  reused buffer: memory stays flat however large the file is;
  ``send_file()`` sends one with ``sendfile`` when no byte needs to be seen.
"""

from __future__ import annotations

import mmap
import socket
from typing import Any, BinaryIO, Callable, Protocol

from socklab.framing import NEED_DATA, LocalProtocolError, PeerClosed, ProtocolError

CHUNK = 1 << 20  # 1 MiB: large enough that per-call overhead vanishes


def failure_reason(exc: BaseException) -> str:
    """What to tell a user whose exchange failed: our own words for a vanished
    peer or a broken protocol, the OS's short text (strerror) for the rest."""
    if isinstance(exc, (PeerClosed, ProtocolError)) or not isinstance(exc, OSError):
        return str(exc)
    return exc.strerror or str(exc)


class Decoder(Protocol):
    body_remaining: int

    @property
    def buffered(self) -> int: ...

    def feed(self, data: bytes) -> None: ...

    def next_event(self) -> Any: ...

    def consume_body(self, n: int) -> None: ...


class Connection:
    def __init__(
        self,
        sock: socket.socket,
        decoder: Decoder,
        encode: Callable[[Any], bytes],
        chunk_size: int = CHUNK,
    ) -> None:
        self.sock = sock
        self.decoder = decoder
        self._encode = encode
        # Anonymous memory, not bytearray(chunk_size): a bytearray is zeroed
        # at once, so a thousand idle connections would hold a thousand full
        # buffers (1 GiB for ftp's). The kernel gives these pages only as
        # recv/read first write them: an idle connection costs none.
        self._buffer = mmap.mmap(-1, chunk_size)
        self._view = memoryview(self._buffer)

    def send(self, *messages: Any) -> None:
        # One sendall for several messages: fewer segments, and sendall (unlike
        # send) loops until the kernel has taken every byte.
        self.sock.sendall(b"".join(self._encode(m) for m in messages))

    def _midway(self) -> str:
        if self.decoder.body_remaining:
            return f"{self.decoder.body_remaining} bytes of a file body still to come"
        if self.decoder.buffered:
            return f"{self.decoder.buffered} bytes of a frame had arrived"
        return ""

    def _recv_into(self, size: int) -> int:
        try:
            n = self.sock.recv_into(self._buffer, size)
        except ConnectionResetError:
            raise PeerClosed(self._midway(), reset=True) from None
        if n == 0:
            raise PeerClosed(self._midway())
        return n

    def _recv_into_decoder(self) -> None:
        n = self._recv_into(len(self._buffer))
        self.decoder.feed(self._view[:n])

    def receive(self) -> Any:
        """The next whole message. Raises ``PeerClosed`` at end of stream."""
        while True:
            event = self.decoder.next_event()
            if event is not NEED_DATA:
                return event
            self._recv_into_decoder()

    def receive_body(self, sink: Callable[[memoryview], Any]) -> int:
        """Pass the announced file body to ``sink`` piece by piece; returns its size."""
        total = 0
        while self.decoder.body_remaining:
            if self.decoder.buffered:
                piece = memoryview(self.decoder.next_event().data)
            else:
                # Ask for at most what is left of the body, so the digest frame
                # behind it stays in the socket for receive() to decode.
                n = self._recv_into(min(len(self._buffer), self.decoder.body_remaining))
                self.decoder.consume_body(n)
                piece = self._view[:n]
            sink(piece)
            total += len(piece)
        return total

    def send_body(self, source: BinaryIO, size: int, on_chunk: Callable[[memoryview], Any]) -> None:
        """Send exactly ``size`` bytes of ``source``, each chunk seen by ``on_chunk`` first.

        Not ``socket.sendfile``: the checksum needs every byte in user space
        anyway, so zero-copy would save nothing here; ``readinto`` a reused
        buffer keeps it to one copy and constant memory. ``send_file`` is
        the zero-copy way, once the checksum is known.
        """
        left = size
        while left:
            n = source.readinto(self._view[: min(len(self._buffer), left)])
            if not n:
                # The header already promised `size` bytes: the stream cannot
                # be repaired, only closed.
                raise LocalProtocolError(f"file shrank while being sent ({left} of {size} bytes missing)")
            piece = self._view[:n]
            on_chunk(piece)
            self.sock.sendall(piece)
            left -= n

    def send_file(self, source: BinaryIO, size: int) -> None:
        """Send exactly ``size`` bytes of ``source`` with ``socket.sendfile``.

        Zero copy: the kernel moves the file's pages to the socket and the
        bytes never enter Python. For a sender that already knows the
        checksum (``send_body`` is for one that must compute it).
        """
        sent = self.sock.sendfile(source, 0, size)
        if sent < size:
            raise LocalProtocolError(f"file shrank while being sent ({size - sent} of {size} bytes missing)")

    def close(self) -> None:
        self.sock.close()
