"""HTTP/1.1 client, as a student could write it: GET each path on one connection, print each body.

    python3 client.py HOST PORT PATH...
"""

import socket
import sys

TIMEOUT = 10.0
MAX_HEAD = 64 * 1024


def recv_head(sock: socket.socket, buffer: bytes) -> tuple:
    """One response head (without its empty line) and what came after it."""
    while b"\r\n\r\n" not in buffer:  # a recv() returns what has arrived: maybe half a head
        if len(buffer) > MAX_HEAD:
            raise ValueError("the response head is over 64 KiB")
        data = sock.recv(4096)
        if not data:
            raise ConnectionError("the server closed the connection before the end of the response head")
        buffer += data
    head, rest = buffer.split(b"\r\n\r\n", 1)
    return head, rest


def recv_body(sock: socket.socket, buffer: bytes, length: int) -> tuple:
    """Exactly ``length`` body bytes and what came after them."""
    body = bytearray(buffer)
    while len(body) < length:  # the body ends after Content-Length bytes, not when the server closes
        data = sock.recv(65536)
        if not data:
            raise ConnectionError(f"the server closed the connection after {len(body)} of {length} body bytes")
        body += data
    return bytes(body[:length]), bytes(body[length:])


def main() -> int:
    host, port, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
            buffer = b""
            for number, path in enumerate(paths, 1):
                close = "Connection: close\r\n" if number == len(paths) else ""  # the last one
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{close}\r\n".encode())
                head, buffer = recv_head(sock, buffer)
                status_line, *lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                if not headers.get("content-length", "").isdigit():
                    raise ValueError(f"{path}: no Content-Length in the response")
                body, buffer = recv_body(sock, buffer, int(headers["content-length"]))
                if status_line.split(" ")[1:2] != ["200"]:
                    print(f"error: {path}: {status_line}", file=sys.stderr)
                    return 1
                sys.stdout.buffer.write(body)
                sys.stdout.flush()
    except socket.timeout:
        print(f"error: nothing from {host}:{port} for {TIMEOUT:g} s", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"error: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
