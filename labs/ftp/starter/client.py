"""Your FTP-like client: downloads and uploads over framed messages.

    python3 client.py HOST PORT get NAME      download NAME into the current folder
    python3 client.py HOST PORT put FILE      upload FILE under its base name
    python3 client.py HOST PORT get a.txt put b.txt ...   in order, over one connection

Fill in the places marked TODO(socket); `make check-ftp` tells you which pitfall
each check found. The rules (labs/ftp/README.md, "Your own server and client"):
- frames as the server's (kind, 4-byte length, payload); a file is F (size, b"sha256"),
  exactly `size` raw bytes, then D (their SHA-256);
- get: keep the file only if the digest matches: write it under a temporary name,
  rename it at the end; put: send the file only after O "ready"; then read O "stored ...";
- after the last command: C "quit", O "bye";
- exit 0 when every command worked; at the first failure (an E frame, a wrong digest,
  the connection closed or reset, no answer for 10 seconds): a message on stderr, exit 1.
"""

import hashlib
import os
import socket
import struct
import sys
import tempfile

HEADER = struct.Struct("!cI")  # kind, payload length
SIZE = struct.Struct("!Q")  # an F frame's file size
MAX_PAYLOAD = 64 * 1024
CHUNK = 64 * 1024
TIMEOUT = 10.0


class Todo(Exception):
    """A part left for you to write."""


class Failed(Exception):
    """A request that failed; the message says why."""


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Exactly n bytes from sock."""
    # TODO(socket): sock.recv() in a loop until n bytes are in -- one recv() is not one frame;
    # never ask for more than is missing; b"" means the server closed: raise Failed
    raise Todo("recv_exact(): read exactly n bytes")


def recv_frame(sock: socket.socket) -> tuple[bytes, bytes]:
    kind, length = HEADER.unpack(recv_exact(sock, HEADER.size))
    if length > MAX_PAYLOAD:
        raise Failed(f"the server sent a frame of {length} bytes, over the {MAX_PAYLOAD}-byte limit")
    return kind, recv_exact(sock, length)


def send_frame(sock: socket.socket, kind: bytes, payload: bytes) -> None:
    # TODO(socket): send the header and the payload, all of it (send() may send only part)
    raise Todo("send_frame(): send a frame")


def reply(sock: socket.socket) -> str:
    """The server's O answer, or Failed with its E message."""
    kind, payload = recv_frame(sock)
    text = payload.decode("utf-8", "replace")
    if kind == b"E":
        raise Failed(f"the server says: {text}")
    if kind != b"O":
        raise Failed(f"expected an answer (O or E frame), got a {kind!r} frame")
    return text


def get(sock: socket.socket, name: str) -> None:
    send_frame(sock, b"C", f"get {name}".encode())
    kind, payload = recv_frame(sock)
    if kind == b"E":
        raise Failed(f"get {name}: the server says: {payload.decode('utf-8', 'replace')}")
    if kind != b"F" or payload[SIZE.size:] != b"sha256":
        raise Failed(f"get {name}: expected a sha256 file header (F frame), got a {kind!r} frame")
    (size,) = SIZE.unpack_from(payload)
    local = os.path.basename(name)
    fd, temp = tempfile.mkstemp(dir=".", prefix=f".{local}.part-")
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as f:
            # TODO(socket): receive exactly `size` bytes of body, writing and digesting each piece;
            # ask for at most what is left of the body (the D frame follows it);
            # b"" means the server closed in the middle: raise Failed
            raise Todo("get(): receive the file body")
        kind, payload = recv_frame(sock)
        if kind != b"D":
            raise Failed(f"get {name}: expected the digest (D frame) after the body, got a {kind!r} frame")
        if payload != digest.digest():
            raise Failed(f"get {name}: the SHA-256 of what arrived is not the server's; nothing was kept")
        os.replace(temp, local)  # only now, verified, under its real name
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    print(f"get {name}: {size} bytes, sha256 verified")


def put(sock: socket.socket, path: str) -> None:
    name = os.path.basename(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        send_frame(sock, b"C", f"put {name}".encode())
        reply(sock)  # "ready", or the server's refusal before a byte of the file is sent
        send_frame(sock, b"F", SIZE.pack(size) + b"sha256")
        digest = hashlib.sha256()
        # TODO(socket): read the file in CHUNKs, digest.update() each, send each, all of it
        raise Todo("put(): send the file body")
        send_frame(sock, b"D", digest.digest())
    print(f"put {name}: {size} bytes, {reply(sock)}")


def main() -> int:
    host, port, words = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    commands = list(zip(words[::2], words[1::2]))
    if not commands or len(words) % 2 or any(verb not in ("get", "put") for verb, _ in commands):
        print("usage: client.py HOST PORT (get NAME | put FILE)...", file=sys.stderr)
        return 2
    try:
        # TODO(socket): connect to (host, port) with a timeout of TIMEOUT seconds
        raise Todo("main(): connect to the server")
        for verb, name in commands:
            if verb == "get":
                get(sock, name)  # noqa: F821 (sock: yours to create)
            else:
                put(sock, name)  # noqa: F821
        send_frame(sock, b"C", b"quit")  # noqa: F821
        reply(sock)  # noqa: F821
    except Todo as todo:
        print(f"starter: TODO(socket) not written yet in client.py: {todo}", file=sys.stderr)
        return 2
    except Failed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except socket.timeout:
        print(f"error: no answer from {host}:{port} within {TIMEOUT:g} s", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
