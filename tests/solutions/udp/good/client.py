"""UDP echo client, as a student could write it: each message one datagram, each echo printed.

    python3 client.py HOST PORT MESSAGE...
"""

from __future__ import annotations

import os
import socket
import sys
import time

TIMEOUT = 1.0  # seconds to wait for an echo before sending the message again
TRIES = 4  # the first send, then 3 more: UDP itself never resends
MAX_DATAGRAM = 65535  # recvfrom(n) silently discards what does not fit in n bytes


def ask(sock: socket.socket, server: tuple, message: bytes) -> bytes | None:
    """The echo of ``message``, or None when none came after TRIES sends."""
    for _ in range(TRIES):
        sock.sendto(message, server)
        deadline = time.monotonic() + TIMEOUT
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data, sender = sock.recvfrom(MAX_DATAGRAM)
            except socket.timeout:
                break
            if sender == server and data == message:
                return data
            # Anything else is not this message's echo: a late or duplicated echo
            # of an earlier message, or a datagram from someone else. Ignore it.
    return None


def main() -> int:
    host, port = sys.argv[1], int(sys.argv[2])
    try:
        server = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)[0][4]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for arg in sys.argv[3:]:
                message = os.fsencode(arg)
                reply = ask(sock, server, message)
                if reply is None:
                    print(f"error: no echo of {message[:40]!r} from {host}:{port} after {TRIES} tries, "
                          f"{TIMEOUT:g} s each", file=sys.stderr)
                    return 1
                sys.stdout.buffer.write(reply + b"\n")
                sys.stdout.flush()
    except OSError as exc:
        print(f"error: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
