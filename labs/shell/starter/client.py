"""Your shell client: each line of stdin run on the server, its output printed.

    printf 'id\\nls /nope\\n' | python3 client.py HOST PORT

Fill in the places marked TODO(socket); `make check-shell` tells you which
pitfall each check found. The rules (labs/shell/README.md):
- send b"framing length\\n" first, then each non-empty line of stdin with its b"\\n";
- each reply: HEADER (20 bytes), then stdout, then stderr: print each where it belongs;
- exit with the last command's status (128+N when a signal N killed it), like ssh;
- a reply claiming more than 64 MiB is refused; the connection closed or reset
  early, or no reply for 10 seconds: a message on stderr, exit 255.
"""

import socket
import struct
import sys

HEADER = struct.Struct("!IIiII")  # stdout bytes, stderr bytes, exit status, flags, elapsed ms
TRUNCATED, TIMED_OUT, REFUSED = 1, 2, 4
MAX_REPLY = 64 * 1024 * 1024
TIMEOUT = 10.0


class Todo(Exception):
    """A part left for you to write."""


class BadReply(Exception):
    """The server sent something we will not read."""


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    """Exactly ``size`` bytes from ``sock``."""
    # TODO(socket): sock.recv() until you have size bytes -- one recv() is not one message;
    # b"" means the server closed: raise ConnectionError
    raise Todo("recv_exactly(): read until you have them all")


def run(sock: socket.socket, command: bytes) -> tuple[bytes, bytes, int, int]:
    """Run one command: (stdout, stderr, status, flags)."""
    # TODO(socket): send command + b"\n", all of it
    out_len, err_len, status, flags, _ = HEADER.unpack(recv_exactly(sock, HEADER.size))
    if out_len + err_len > MAX_REPLY:
        raise BadReply(f"the reply claims {out_len + err_len} bytes of output, over our {MAX_REPLY}-byte limit")
    return recv_exactly(sock, out_len), recv_exactly(sock, err_len), status, flags


def main() -> int:
    host, port = sys.argv[1], int(sys.argv[2])
    status = 0
    try:
        # TODO(socket): connect to (host, port) with a timeout of TIMEOUT seconds; send b"framing length\n"
        raise Todo("main(): connect to the server")
        for line in sys.stdin.buffer:
            command = line.rstrip(b"\r\n")
            if not command.strip():
                continue
            stdout, stderr, status, flags = run(sock, command)  # noqa: F821 (sock: yours to create)
            sys.stdout.buffer.write(stdout)
            sys.stdout.flush()
            sys.stderr.buffer.write(stderr)
            if flags & TIMED_OUT:
                sys.stderr.write("client: killed at the server's time limit\n")
            if flags & TRUNCATED:
                sys.stderr.write("client: output truncated at the server's cap\n")
            sys.stderr.flush()
            status = 126 if flags & REFUSED else 128 - status if status < 0 else status & 0xFF
    except Todo as todo:
        print(f"starter: TODO(socket) not written yet in client.py: {todo}", file=sys.stderr)
        return 2
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
