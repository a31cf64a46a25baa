"""HTTP/1.1 file server, as a student could write it: GET and HEAD of the files under ROOT, a thread per client.

    python3 server.py PORT ROOT
"""

import os
import socket
import sys
import threading
from urllib.parse import unquote

IDLE = 5.0  # seconds a client may stay silent before we close its connection
MAX_HEAD = 64 * 1024  # a longer request head is refused: one client must not take all the memory


def response(status: str, body: bytes = b"", head_only: bool = False, close: bool = False) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n"  # the client needs it: the connection stays open
    head += "Connection: close\r\n\r\n" if close else "\r\n"
    return head.encode() if head_only else head.encode() + body


def read_head(conn: socket.socket, buffer: bytes) -> tuple:
    """One request head (without its empty line) and what came after it; None if the client left."""
    while b"\r\n\r\n" not in buffer:  # a recv() returns what has arrived: maybe half a request
        if len(buffer) > MAX_HEAD:
            raise ValueError("request head over 64 KiB")
        data = conn.recv(4096)
        if not data:
            return None, b""
        buffer += data
    head, rest = buffer.split(b"\r\n\r\n", 1)
    return head, rest


def locate(root: str, target: str):
    """The file a request target names, or None when it would leave ROOT."""
    name = unquote(target.split("?")[0]).lstrip("/")  # %2e%2e is '..' once decoded: decode first, check after
    path = os.path.realpath(os.path.join(root, name))
    if path != root and not path.startswith(root + os.sep):
        return None
    return path


def answer(root: str, method: str, target: str) -> bytes:
    if method not in ("GET", "HEAD"):
        return response("405 Method Not Allowed", b"only GET and HEAD\n")
    path = locate(root, target)
    if path is None:
        return response("403 Forbidden", b"outside the served folder\n", method == "HEAD")
    if not os.path.isfile(path):
        return response("404 Not Found", b"no such file\n", method == "HEAD")
    with open(path, "rb") as f:
        return response("200 OK", f.read(), method == "HEAD")


def serve(conn: socket.socket, root: str) -> None:
    with conn:
        conn.settimeout(IDLE)
        buffer = b""
        try:
            while True:
                try:
                    head, buffer = read_head(conn, buffer)  # keep what follows: maybe the next request
                except ValueError:
                    conn.sendall(response("431 Request Header Fields Too Large", b"head too large\n", close=True))
                    return
                if head is None:
                    return  # the client closed
                parts = head.split(b"\r\n")[0].split(b" ")
                if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
                    conn.sendall(response("400 Bad Request", b"malformed request line\n", close=True))
                    return
                method, target = parts[0].decode("latin-1"), parts[1].decode("latin-1")
                conn.sendall(answer(root, method, target))  # sendall: send() may send only part
                if b"\r\nconnection: close" in head.lower():
                    return
        except (socket.timeout, ConnectionError):
            return  # silent too long, or vanished: this client only


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
