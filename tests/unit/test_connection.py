"""Connection.receive_body with Behind: work in a second thread, pieces in rotating buffers."""

from __future__ import annotations

import hashlib
import os
import socket
import threading

import pytest

from socklab.connection import Behind, Connection
from socklab.ftp import protocol as p


def body_over_socketpair(body: bytes, first: int, chunk: int = 1000):
    """A connection that has decoded a file header, with ``first`` body bytes
    already in its decoder (they came with the header), the rest still coming
    from the socket in chunks, and a D frame after the body."""
    ours, theirs = socket.socketpair()
    ours.settimeout(5)
    conn = Connection(ours, p.Decoder(), p.encode)
    header = p.encode(p.FileHeader(len(body)))

    def send():
        with theirs:
            for i in range(first, len(body), chunk):
                theirs.sendall(body[i : i + chunk])
            theirs.sendall(p.encode(p.Digest(b"d")))

    conn.decoder.feed(header + body[:first])
    assert isinstance(conn.decoder.next_event(), p.FileHeader)
    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return conn, thread


@pytest.mark.parametrize("first", [0, 777])
def test_every_piece_is_worked_on_in_order_and_the_frame_after_stays(first):
    body = os.urandom(200_000)
    checksum = hashlib.sha256()
    conn, sender = body_over_socketpair(body, first)
    # Two small buffers, so that each is handed out again many times.
    with Behind(checksum.update, buffers=2, size=4096) as behind:
        assert conn.receive_body(behind.submit, behind.next_buffer) == len(body)
        behind.finish()
    assert checksum.digest() == hashlib.sha256(body).digest()
    assert conn.receive() == p.Digest(b"d")
    sender.join(5)
    conn.close()


def test_an_error_in_the_work_reaches_the_receiving_thread():
    def fail(piece):
        raise OSError(28, "No space left on device")

    conn, sender = body_over_socketpair(os.urandom(50_000), 0)
    with pytest.raises(OSError, match="No space"), Behind(fail, buffers=2, size=4096) as behind:
        conn.receive_body(behind.submit, behind.next_buffer)
        behind.finish()
    sender.join(5)
    conn.close()
