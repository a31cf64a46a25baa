"""Your HTTP/1.1 file server: GET and HEAD of the files under ROOT, many clients at once.

    python3 server.py PORT ROOT

Fill in the places marked TODO; `make check-http SOLUTION=labs/http/starter`
(or a copy of this folder) tells you which pitfall each check found.
The rules (labs/http/README.md, "Your own server and client"):
- a request is a head: b"GET /hello.txt HTTP/1.1\\r\\n", header lines, then an
  empty line (b"\\r\\n\\r\\n" ends the head); answer it with a status line, a
  Content-Length header, an empty line and the file (HEAD: the same head, no body);
- keep the connection open for the next request (HTTP/1.1 keep-alive);
- 404 for a missing file; 403 (or 404) for a path that would leave ROOT;
  400 for a malformed request line; a head over 64 KiB: 431, then close;
- serve many clients at once; close a client that sent nothing for 5 seconds.
"""

import os
import socket
import sys
import threading
from urllib.parse import unquote

IDLE = 5.0
MAX_HEAD = 64 * 1024


class Todo(Exception):
    """A part left for you to write."""


def response(status: str, body: bytes = b"", head_only: bool = False, close: bool = False) -> bytes:
    """b"HTTP/1.1 200 OK\\r\\nContent-Length: 13\\r\\n\\r\\nHello, World\\n" and the like."""
    head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n"
    head += "Connection: close\r\n\r\n" if close else "\r\n"
    return head.encode() if head_only else head.encode() + body


def read_head(conn: socket.socket, buffer: bytes) -> tuple:
    """One request head (without its b"\\r\\n\\r\\n") and what came after it; (None, b"") if the client left."""
    # TODO(socket): conn.recv() until buffer holds b"\r\n\r\n" (a recv() returns whatever has
    # arrived: half a head, or two requests); b"" means the client left; raise ValueError when
    # buffer grows past MAX_HEAD. Keep what follows the empty line: it is the next request.
    raise Todo("read_head(): read a whole request head with recv()")


def locate(root: str, target: str):
    """The file a request target (b"/hello.txt" decoded) names, or None when it would leave ROOT."""
    name = unquote(target.split("?")[0]).lstrip("/")  # %2e%2e is '..' once decoded: decode first
    # TODO(path): os.path.realpath(os.path.join(root, name)), and None unless it is inside root:
    # "../secret.txt" must not leave the served folder.
    raise Todo("locate(): confine the path to ROOT")


def answer(root: str, method: str, target: str) -> bytes:
    """The response to one request that parsed."""
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
    """Answer one client's requests until it leaves, goes silent, or misbehaves."""
    with conn:
        # TODO(socket): a timeout, so that a silent client cannot keep this thread for ever
        buffer = b""
        try:
            while True:
                try:
                    head, buffer = read_head(conn, buffer)
                except ValueError:
                    conn.sendall(response("431 Request Header Fields Too Large", b"head too large\n", close=True))
                    return
                if head is None:
                    return
                parts = head.split(b"\r\n")[0].split(b" ")  # b"GET /hello.txt HTTP/1.1"
                if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
                    conn.sendall(response("400 Bad Request", b"malformed request line\n", close=True))
                    return
                reply = answer(root, parts[0].decode("latin-1"), parts[1].decode("latin-1"))
                # TODO(socket): send the reply, all of it (send() may send only part)
                raise Todo("serve(): send the response")
        except (socket.timeout, ConnectionError):
            return


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
