"""Your echo client: each line of stdin to the server, each reply printed.

    printf 'hello\\nworld\\n' | python3 client.py HOST PORT

Fill in the places marked TODO(socket); `make check-echo` tells you which
pitfall each check found. The rules (labs/echo/README.md):
- send each non-empty line of stdin with its b"\\n", print each reply line;
- a reply starting with b"ERROR" is the server's last word: print it on stderr, exit 1;
- the server closing or resetting the connection early, or not answering for
  10 seconds: a message on stderr, exit 1.
"""

import socket
import sys

TIMEOUT = 10.0


class Todo(Exception):
    """A part left for you to write."""


def recv_line(sock: socket.socket, buffer: bytes) -> tuple[bytes, bytes]:
    """One reply line (without its b"\\n") and whatever came after it."""
    # TODO(socket): sock.recv() until buffer holds a b"\n" -- one recv() is not one message;
    # b"" means the server closed: raise ConnectionError
    raise Todo("recv_line(): read until the newline")


def main() -> int:
    host, port = sys.argv[1], int(sys.argv[2])
    try:
        # TODO(socket): connect to (host, port) with a timeout of TIMEOUT seconds
        raise Todo("main(): connect to the server")
        buffer = b""
        for line in sys.stdin.buffer:
            line = line.rstrip(b"\n")
            if not line:
                continue
            # TODO(socket): send line + b"\n", all of it
            reply, buffer = recv_line(sock, buffer)  # noqa: F821 (sock: yours to create)
            if reply.startswith(b"ERROR"):
                print(f"error: the server says: {reply.decode(errors='replace')}", file=sys.stderr)
                return 1
            sys.stdout.buffer.write(reply + b"\n")
            sys.stdout.flush()
    except Todo as todo:
        print(f"starter: TODO(socket) not written yet in client.py: {todo}", file=sys.stderr)
        return 2
    except socket.timeout:
        print(f"error: no reply from {host}:{port} within {TIMEOUT:g} s", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
