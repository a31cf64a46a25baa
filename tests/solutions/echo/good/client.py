"""Echo client, as a student could write it: each line of stdin to the server, each reply printed.

    printf 'hello\\nworld\\n' | python3 client.py HOST PORT
"""

import socket
import sys

TIMEOUT = 10.0


def recv_line(sock: socket.socket, buffer: bytes) -> tuple[bytes, bytes]:
    """One line (without its newline) and what came after it."""
    while b"\n" not in buffer:  # one recv() is not one message: read until the newline
        data = sock.recv(4096)
        if not data:
            raise ConnectionError("the server closed the connection before the end of the reply")
        buffer += data
    line, rest = buffer.split(b"\n", 1)
    return line, rest


def main() -> int:
    host, port = sys.argv[1], int(sys.argv[2])
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
            buffer = b""
            for line in sys.stdin.buffer:
                line = line.rstrip(b"\n")
                if not line:
                    continue
                sock.sendall(line + b"\n")
                reply, buffer = recv_line(sock, buffer)
                if reply.startswith(b"ERROR"):
                    print(f"error: the server says: {reply.decode(errors='replace')}", file=sys.stderr)
                    return 1
                sys.stdout.buffer.write(reply + b"\n")
                sys.stdout.flush()
    except socket.timeout:
        print(f"error: no reply from {host}:{port} within {TIMEOUT:g} s", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
