"""FTP-like client, as a student could write it: downloads and uploads over framed messages.

    python3 client.py HOST PORT get NAME      download NAME into the current folder
    python3 client.py HOST PORT put FILE      upload FILE under its base name
    python3 client.py HOST PORT get a.txt put b.txt ...   in order, over one connection
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


class Failed(Exception):
    """A request that failed; the message says why."""


def recv_exact(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:  # a recv() returns what has arrived: maybe less
        chunk = sock.recv(n - len(data))  # never more: what follows belongs to the next frame
        if not chunk:
            raise Failed("the server closed the connection in the middle of a frame")
        data += chunk
    return bytes(data)


def recv_frame(sock: socket.socket) -> tuple[bytes, bytes]:
    kind, length = HEADER.unpack(recv_exact(sock, HEADER.size))
    if length > MAX_PAYLOAD:
        raise Failed(f"the server sent a frame of {length} bytes, over the {MAX_PAYLOAD}-byte limit")
    return kind, recv_exact(sock, length)


def send_frame(sock: socket.socket, kind: bytes, payload: bytes) -> None:
    sock.sendall(HEADER.pack(kind, len(payload)) + payload)  # sendall: send() may send only part


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
    # A temporary name, renamed once the digest matches: a failure never leaves
    # a partial or corrupted file under the real name.
    fd, temp = tempfile.mkstemp(dir=".", prefix=f".{local}.part-")
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as f:
            received = 0
            while received < size:
                chunk = sock.recv(min(CHUNK, size - received))  # not past the body: the D frame follows
                if not chunk:
                    raise Failed(f"get {name}: the server closed the connection after {received} of {size} bytes")
                f.write(chunk)
                digest.update(chunk)
                received += len(chunk)
        kind, payload = recv_frame(sock)
        if kind != b"D":
            raise Failed(f"get {name}: expected the digest (D frame) after the body, got a {kind!r} frame")
        if payload != digest.digest():
            raise Failed(f"get {name}: the SHA-256 of what arrived is not the server's; nothing was kept")
        os.replace(temp, local)
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
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            sock.sendall(chunk)  # sendall: send() may send only part of a large chunk
        send_frame(sock, b"D", digest.digest())
    print(f"put {name}: {size} bytes, {reply(sock)}")


def main() -> int:
    host, port, words = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    commands = list(zip(words[::2], words[1::2]))
    if not commands or len(words) % 2 or any(verb not in ("get", "put") for verb, _ in commands):
        print("usage: client.py HOST PORT (get NAME | put FILE)...", file=sys.stderr)
        return 2
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
            for verb, name in commands:
                if verb == "get":
                    get(sock, name)
                else:
                    put(sock, name)
            send_frame(sock, b"C", b"quit")
            reply(sock)
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
