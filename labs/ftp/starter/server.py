"""Your FTP-like server: get, put and quit over framed messages, many clients at once.

    python3 server.py PORT ROOT

Fill in the places marked TODO(socket); `make check-ftp SOLUTION=labs/ftp/starter`
(or a copy of this folder) tells you which pitfall each check found.
The rules (labs/ftp/README.md, "Your own server and client"):
- every message is a frame: kind (1 byte), payload length (4 bytes, big-endian), payload;
- C "get NAME": the file as an F frame (its size, 8 bytes big-endian, then b"sha256"),
  exactly `size` raw bytes, then a D frame holding their SHA-256;
- C "put NAME": O "ready", then the client sends F, the body and D; keep the file only
  if the digest matches (written under a temporary name, renamed at the end), then
  O "stored ..."; on a mismatch E "checksum-mismatch: ...";
- C "quit": O "bye", then close;
- anything else, a missing file, a name outside ROOT: E "CODE: message", and go on;
- a frame longer than 64 KiB: refused before it is read (E "bad-frame: ...", close);
- many clients at once; close a client that sent nothing for 5 seconds.
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
MAX_PAYLOAD = 64 * 1024
CHUNK = 64 * 1024
IDLE = 5.0


class Todo(Exception):
    """A part left for you to write."""


class Refused(Exception):
    """A request answered with an E frame ("code: message"); the connection goes on."""


class BadFrame(Exception):
    """The client broke the wire format: say why, then close."""


def recv_exact(conn: socket.socket, n: int) -> bytes:
    """Exactly n bytes from conn."""
    # TODO(socket): conn.recv() in a loop until n bytes are in -- a recv() returns what has
    # arrived, maybe less; never ask for more than is missing (what follows is the next frame);
    # b"" means the client closed: raise ConnectionError
    raise Todo("recv_exact(): read exactly n bytes")


def recv_frame(conn: socket.socket) -> tuple[bytes, bytes]:
    kind, length = HEADER.unpack(recv_exact(conn, HEADER.size))
    if length > MAX_PAYLOAD:
        raise BadFrame(f"a frame of {length} bytes is over the {MAX_PAYLOAD}-byte limit")
    return kind, recv_exact(conn, length)


def send_frame(conn: socket.socket, kind: bytes, payload: bytes) -> None:
    # TODO(socket): send the header and the payload, all of it (send() may send only part)
    raise Todo("send_frame(): send a frame")


def inside(root: str, name: str) -> str:
    """The path of `name` in `root`, or Refused when it leads out."""
    # TODO(socket): not a socket call, but the server's first duty: realpath, then refuse
    # anything that is not inside root (../../etc/passwd, /etc/passwd)
    raise Todo("inside(): keep every path inside ROOT")


def get(conn: socket.socket, root: str, name: str) -> None:
    path = inside(root, name)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise Refused(f"not-found: no such file: {name}") from None
    except OSError as exc:
        raise Refused(f"io-error: cannot open {name}: {exc.strerror}") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        send_frame(conn, b"F", SIZE.pack(size) + b"sha256")
        digest = hashlib.sha256()
        # TODO(socket): read the file in CHUNKs, digest.update() each, send each, all of it
        raise Todo("get(): send the file body")
        send_frame(conn, b"D", digest.digest())


def put(conn: socket.socket, root: str, name: str) -> None:
    path = inside(root, name)
    send_frame(conn, b"O", b"ready")
    kind, payload = recv_frame(conn)
    if kind != b"F" or payload[SIZE.size:] != b"sha256":
        raise BadFrame("expected a sha256 file header (F frame) after 'ready'")
    (size,) = SIZE.unpack_from(payload)
    fd, temp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".upload-")
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as f:
            # TODO(socket): receive exactly `size` bytes of body, writing and digesting each piece;
            # ask for at most what is left of the body: the D frame follows it
            raise Todo("put(): receive the file body")
        kind, payload = recv_frame(conn)
        if kind != b"D":
            raise BadFrame("expected a digest (D frame) after the file body")
        if payload != digest.digest():
            raise Refused(f"checksum-mismatch: {name}: the SHA-256 differs; nothing was kept")
        os.replace(temp, path)  # only now, verified, under its real name
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    send_frame(conn, b"O", f"stored {name}: {size} bytes".encode())


def serve(conn: socket.socket, root: str) -> None:
    """One client's commands until it quits, goes silent, or misbehaves."""
    with conn:
        # TODO(socket): a timeout (IDLE), so that a silent client cannot keep this thread for ever
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
            send_frame(conn, b"E", f"bad-frame: {exc}".encode())
        except OSError:
            return  # silent too long, vanished: this client only


def main() -> int:
    port, root = int(sys.argv[1]), os.path.realpath(sys.argv[2])
    try:
        # TODO(socket): create a TCP socket, allow address reuse, bind it to ("0.0.0.0", port), listen()
        raise Todo("main(): create the listening socket")
        while True:
            # TODO(socket): accept() a client and serve(conn, root) it -- without making the others wait
            raise Todo("main(): accept clients")
    except Todo as todo:
        print(f"starter: TODO(socket) not written yet in server.py: {todo}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
