"""Shell client, as a student could write it: each line of stdin run on the server, its output printed.

    printf 'id\nls /nope\n' | python3 client.py HOST PORT

Exits with the last command's status, like ssh; 255 when the connection fails.
"""

import socket
import struct
import sys

HEADER = struct.Struct("!IIiII")  # stdout bytes, stderr bytes, exit status, flags, elapsed ms
TRUNCATED, TIMED_OUT, REFUSED = 1, 2, 4
MAX_REPLY = 64 * 1024 * 1024  # a reply claiming more is refused: a server cannot make us buffer anything it says
TIMEOUT = 10.0


class BadReply(Exception):
    """The server sent something we will not read."""


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:  # one recv() returns what has arrived, not what was sent
        data = sock.recv(min(size, 65536))
        if not data:
            raise ConnectionError("the server closed the connection in the middle of a reply")
        chunks.append(data)
        size -= len(data)
    return b"".join(chunks)


def connect(host: str, port: int) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=TIMEOUT)
    sock.sendall(b"framing length\n")  # the server's default too; said, to be sure
    return sock


def run(sock: socket.socket, command: bytes) -> tuple[bytes, bytes, int, int]:
    sock.sendall(command + b"\n")
    out_len, err_len, status, flags, _ = HEADER.unpack(recv_exactly(sock, HEADER.size))
    if out_len + err_len > MAX_REPLY:
        raise BadReply(f"the reply claims {out_len + err_len} bytes of output, over our {MAX_REPLY}-byte limit")
    return recv_exactly(sock, out_len), recv_exactly(sock, err_len), status, flags


def main() -> int:
    host, port = sys.argv[1], int(sys.argv[2])
    status = 0
    try:
        with connect(host, port) as sock:
            for line in sys.stdin.buffer:
                command = line.rstrip(b"\r\n")
                if not command.strip():
                    continue
                stdout, stderr, status, flags = run(sock, command)
                sys.stdout.buffer.write(stdout)
                sys.stdout.flush()
                sys.stderr.buffer.write(stderr)
                if flags & TIMED_OUT:
                    sys.stderr.write("client: killed at the server's time limit\n")
                if flags & TRUNCATED:
                    sys.stderr.write("client: output truncated at the server's cap\n")
                sys.stderr.flush()
                status = 126 if flags & REFUSED else 128 - status if status < 0 else status & 0xFF
    except socket.timeout:
        print(f"error: no reply from {host}:{port} within {TIMEOUT:g} s", file=sys.stderr)
        return 255
    except BadReply as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 255
    except OSError as exc:
        print(f"error: connection to {host}:{port} failed: {exc.strerror or exc}", file=sys.stderr)
        return 255
    return status


if __name__ == "__main__":
    sys.exit(main())
