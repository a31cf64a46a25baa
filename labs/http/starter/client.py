"""Your HTTP/1.1 client: GET each path, print each body.

    python3 client.py HOST PORT PATH...

Fill in the places marked TODO(socket); `make check-http` tells you which
pitfall each check found. The rules (labs/http/README.md):
- send b"GET /hello.txt HTTP/1.1\\r\\nHost: HOST\\r\\n\\r\\n" for each path, in order,
  on one connection (b"Connection: close\\r\\n" in the last one tells the server
  nothing more is coming);
- read the response head up to its empty line, then exactly Content-Length
  bytes of body, and print the body on stdout: the server keeps the
  connection open, so its close does not mark the end;
- a status other than 200: the status line on stderr, exit 1;
- the server closing before the end of a body, or 10 seconds without a
  byte: a message on stderr, exit 1.
"""

import socket
import sys

TIMEOUT = 10.0
MAX_HEAD = 64 * 1024


class Todo(Exception):
    """A part left for you to write."""


def recv_head(sock: socket.socket, buffer: bytes) -> tuple:
    """One response head (without its b"\\r\\n\\r\\n") and what came after it."""
    # TODO(socket): sock.recv() until buffer holds b"\r\n\r\n" -- one recv() is not one response;
    # b"" means the server closed: raise ConnectionError; past MAX_HEAD: raise ValueError
    raise Todo("recv_head(): read until the empty line")


def recv_body(sock: socket.socket, buffer: bytes, length: int) -> tuple:
    """Exactly ``length`` body bytes and what came after them."""
    # TODO(socket): sock.recv() until length bytes are there; b"" before that means the server
    # closed in the middle of the body: raise ConnectionError, it is not the whole file
    raise Todo("recv_body(): read Content-Length bytes")


def main() -> int:
    host, port, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    try:
        # TODO(socket): connect to (host, port) with a timeout of TIMEOUT seconds
        raise Todo("main(): connect to the server")
        buffer = b""
        for number, path in enumerate(paths, 1):
            close = "Connection: close\r\n" if number == len(paths) else ""
            request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{close}\r\n".encode()
            # TODO(socket): send the request, all of it
            head, buffer = recv_head(sock, buffer)  # noqa: F821 (sock: yours to create)
            status_line, *lines = head.decode("latin-1").split("\r\n")  # "HTTP/1.1 200 OK", "Name: value"...
            headers = {}
            for line in lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if not headers.get("content-length", "").isdigit():
                raise ValueError(f"{path}: no Content-Length in the response")
            body, buffer = recv_body(sock, buffer, int(headers["content-length"]))  # noqa: F821
            if status_line.split(" ")[1:2] != ["200"]:
                print(f"error: {path}: {status_line}", file=sys.stderr)
                return 1
            sys.stdout.buffer.write(body)
            sys.stdout.flush()
    except Todo as todo:
        print(f"starter: TODO(socket) not written yet in client.py: {todo}", file=sys.stderr)
        return 2
    except socket.timeout:
        print(f"error: nothing from {host}:{port} for {TIMEOUT:g} s", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"error: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
