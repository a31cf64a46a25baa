"""FTP-like server, as a student could write it: get, put and quit over framed messages, a thread per client.

    python3 server.py PORT ROOT

Every message is a frame: kind (1 byte), payload length (4 bytes, big-endian), payload.
A file is an F frame (size, 8 bytes, then b"sha256"), exactly `size` raw bytes, then a
D frame holding the SHA-256 of those bytes.
"""

import hashlib
import os
import socket
import struct
import sys
import tempfile
import threading

HEADER = struct.Struct("!cI")  # kind, payload length
SIZE = struct.Struct("!Q")  # an F frame's file size
MAX_PAYLOAD = 64 * 1024  # a longer frame is refused before it is read
CHUNK = 64 * 1024
IDLE = 5.0  # seconds a client may stay silent before we close its connection


class Refused(Exception):
    """A request answered with an E frame ("code: message"); the connection goes on."""


class BadFrame(Exception):
    """The client broke the wire format: say why, then close (no frame boundary is left to trust)."""


def recv_exact(conn: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:  # a recv() returns what has arrived: maybe less
        chunk = conn.recv(n - len(data))  # never more: what follows belongs to the next frame
        if not chunk:
            raise ConnectionError("the client closed the connection in the middle of a frame")
        data += chunk
    return bytes(data)


def recv_frame(conn: socket.socket) -> tuple[bytes, bytes]:
    kind, length = HEADER.unpack(recv_exact(conn, HEADER.size))
    if length > MAX_PAYLOAD:  # before reading it: the client must not choose what we allocate
        raise BadFrame(f"a frame of {length} bytes is over the {MAX_PAYLOAD}-byte limit")
    return kind, recv_exact(conn, length)


def send_frame(conn: socket.socket, kind: bytes, payload: bytes) -> None:
    conn.sendall(HEADER.pack(kind, len(payload)) + payload)  # sendall: send() may send only part


def inside(root: str, name: str) -> str:
    """The path of `name` in `root`, or Refused when it leads out (../, /etc/passwd, a symlink)."""
    path = os.path.realpath(os.path.join(root, name))
    if os.path.commonpath([root, path]) != root or path == root:
        raise Refused(f"forbidden: {name!r} is not a file of the served folder")
    return path


def get(conn: socket.socket, root: str, name: str) -> None:
    path = inside(root, name)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise Refused(f"not-found: no such file: {name}") from None
    except IsADirectoryError:
        raise Refused(f"is-a-directory: {name} is a folder") from None
    except OSError as exc:
        raise Refused(f"io-error: cannot open {name}: {exc.strerror}") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        send_frame(conn, b"F", SIZE.pack(size) + b"sha256")
        digest = hashlib.sha256()
        sent = 0
        while sent < size:
            chunk = f.read(min(CHUNK, size - sent))
            if not chunk:
                raise OSError(f"{name} shrank while being sent")
            digest.update(chunk)
            conn.sendall(chunk)
            sent += len(chunk)
        send_frame(conn, b"D", digest.digest())


def put(conn: socket.socket, root: str, name: str) -> None:
    path = inside(root, name)
    if os.path.isdir(path):
        raise Refused(f"is-a-directory: {name} is a folder")
    send_frame(conn, b"O", b"ready")
    kind, payload = recv_frame(conn)
    if kind != b"F" or len(payload) <= SIZE.size:
        raise BadFrame("expected a file header (F frame) after 'ready'")
    if payload[SIZE.size:] != b"sha256":
        raise BadFrame(f"checksum {payload[SIZE.size:]!r}: this server knows sha256 only")
    (size,) = SIZE.unpack_from(payload)
    # A temporary name in the same folder, renamed once verified: a client that
    # vanishes, or a corrupted upload, never leaves a partial file under the real name.
    fd, temp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".upload-")
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as f:
            received = 0
            while received < size:
                chunk = conn.recv(min(CHUNK, size - received))  # not past the body: the D frame follows
                if not chunk:
                    raise ConnectionError("the client left in the middle of the upload")
                f.write(chunk)
                digest.update(chunk)
                received += len(chunk)
        kind, payload = recv_frame(conn)
        if kind != b"D":
            raise BadFrame("expected a digest (D frame) after the file body")
        if payload != digest.digest():
            raise Refused(f"checksum-mismatch: {name}: the SHA-256 of what arrived differs; nothing was kept")
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    send_frame(conn, b"O", f"stored {name}: {size} bytes".encode())


def serve(conn: socket.socket, root: str) -> None:
    with conn:
        conn.settimeout(IDLE)
        try:
            while True:
                kind, payload = recv_frame(conn)
                if kind != b"C":
                    raise BadFrame(f"expected a command (C frame), got kind {kind!r}")
                verb, _, name = payload.decode("utf-8", "replace").strip().partition(" ")
                if verb == "quit":
                    send_frame(conn, b"O", b"bye")
                    return
                try:
                    if verb == "get":
                        get(conn, root, name.strip())
                    elif verb == "put":
                        put(conn, root, name.strip())
                    else:
                        raise Refused(f"bad-command: unknown command {verb[:100]!r} (get, put, quit)")
                except Refused as refused:
                    send_frame(conn, b"E", str(refused).encode()[:MAX_PAYLOAD])
        except BadFrame as exc:
            try:
                send_frame(conn, b"E", f"bad-frame: {exc}".encode())
            except OSError:
                pass
        except OSError:
            return  # silent too long, vanished, a full disk: this client only


def main() -> None:
    port, root = int(sys.argv[1]), os.path.realpath(sys.argv[2])
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", port))
    listener.listen()
    print(f"serving {root} on port {port}", file=sys.stderr, flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn, root), daemon=True).start()


if __name__ == "__main__":
    main()
