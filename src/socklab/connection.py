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
- ``Behind`` does a receiver's per-piece work (hashing) in a second thread,
  so that it overlaps receiving the next pieces.
"""

from __future__ import annotations

import mmap
import queue
import socket
import threading
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

    def _recv_into(self, buffer: memoryview, size: int) -> int:
        try:
            n = self.sock.recv_into(buffer, size)
        except ConnectionResetError:
            raise PeerClosed(self._midway(), reset=True) from None
        if n == 0:
            raise PeerClosed(self._midway())
        return n

    def _recv_into_decoder(self) -> None:
        n = self._recv_into(self._view, len(self._buffer))
        self.decoder.feed(self._view[:n])

    def receive(self) -> Any:
        """The next whole message. Raises ``PeerClosed`` at end of stream."""
        while True:
            event = self.decoder.next_event()
            if event is not NEED_DATA:
                return event
            self._recv_into_decoder()

    def receive_body(self, sink: Callable[[memoryview], Any],
                     next_buffer: Callable[[], memoryview] | None = None) -> int:
        """Pass the announced file body to ``sink`` piece by piece; returns its size.

        A piece is a view of this connection's one buffer, valid until ``sink``
        returns. A sink that hands pieces on to another thread passes
        ``next_buffer`` too: each piece is then received into the buffer it
        returns, which stays the sink's (see ``Behind``).
        """
        total = 0
        while self.decoder.body_remaining:
            if self.decoder.buffered:
                piece = memoryview(self.decoder.next_event().data)
            else:
                buffer = self._view if next_buffer is None else next_buffer()
                # Ask for at most what is left of the body, so the digest frame
                # behind it stays in the socket for receive() to decode.
                n = self._recv_into(buffer, min(len(buffer), self.decoder.body_remaining))
                self.decoder.consume_body(n)
                piece = buffer[:n]
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
        if not size:
            return  # nothing to send, and socket.sendfile refuses a count of 0
        sent = self.sock.sendfile(source, 0, size)
        if sent < size:
            raise LocalProtocolError(f"file shrank while being sent ({size - sent} of {size} bytes missing)")

    def close(self) -> None:
        self.sock.close()


class Behind:
    """Runs ``work(piece)`` in a second thread, behind the receiving one.

    Receiving a piece (``recv_into``) then overlaps the work on the pieces
    before it: hashlib and file writes release the GIL for large buffers, so
    on two cores the two threads really run at once. The pieces live in a
    few rotating buffers; ``next_buffer()`` hands one out for receiving only
    once the work on what it held is done, and ``submit()`` queues a piece.
    Pass both to ``Connection.receive_body``; ``finish()`` waits for the last
    piece and reraises an exception ``work`` raised.

        with Behind(checksum.update) as behind:
            conn.receive_body(behind.submit, behind.next_buffer)
            behind.finish()
    """

    def __init__(self, work: Callable[[memoryview], Any], buffers: int = 4, size: int = CHUNK,
                 timeout: float = 60.0) -> None:
        self._work, self._timeout = work, timeout
        self._buffers = [bytearray(size) for _ in range(buffers)]
        self._ours = {id(b) for b in self._buffers}
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        for b in self._buffers:
            self._free.put(b)
        self._todo: queue.SimpleQueue = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="behind", daemon=True)
        self._thread.start()

    def __enter__(self) -> Behind:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._todo.put(None)
        self._thread.join(self._timeout)

    def next_buffer(self) -> memoryview:
        self._raise_error()
        try:
            return memoryview(self._free.get(timeout=self._timeout))
        except queue.Empty:
            raise TimeoutError(f"work behind the receiver stalled for {self._timeout:g} s") from None

    def submit(self, piece: memoryview) -> None:
        self._raise_error()
        self._todo.put(piece)

    def finish(self) -> None:
        """Wait until every submitted piece has been worked on."""
        done = threading.Event()
        self._todo.put(done)
        if not done.wait(self._timeout):
            raise TimeoutError(f"work behind the receiver stalled for {self._timeout:g} s")
        self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while (item := self._todo.get()) is not None:
            if isinstance(item, threading.Event):
                item.set()
                continue
            if self._error is None:
                try:
                    self._work(item)
                except Exception as exc:  # reraised in the receiving thread
                    self._error = exc
            # Pieces of the decoder's own bytes (those that came with the header)
            # are not ours to hand out again.
            if id(item.obj) in self._ours:
                self._free.put(item.obj)
