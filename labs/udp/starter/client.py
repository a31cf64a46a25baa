"""Your UDP echo client: each message one datagram, each echo printed.

    python3 client.py HOST PORT MESSAGE...

Fill in the places marked TODO(socket); `make check-udp` tells you which
pitfall each check found. The rules (labs/udp/README.md):
- send each message as one datagram, one message at a time, and print its echo
  on a line of its own;
- UDP loses datagrams and never says so: wait TIMEOUT seconds for the echo,
  then send the message again, TRIES sends in all;
- UDP may also duplicate datagrams and deliver them late: print a datagram
  only if it is the echo of the message being sent, from the server;
- a message without an echo after its tries: a message on stderr, exit 1.
"""

from __future__ import annotations

import os
import socket
import sys

TIMEOUT = 1.0  # seconds to wait for an echo before sending the message again
TRIES = 4  # the first send, then 3 more
MAX_DATAGRAM = 65535  # recvfrom(n) silently discards what does not fit in n bytes


class Todo(Exception):
    """A part left for you to write."""


def ask(sock: socket.socket, server: tuple, message: bytes) -> bytes | None:
    """The echo of ``message``, or None when none came after TRIES sends."""
    for _ in range(TRIES):
        # TODO(socket): sendto() the message; then, until TIMEOUT has passed (settimeout(), and
        # socket.timeout when it is over), recvfrom() datagrams: return the one that is the echo of
        # this message from the server, ignore any other (a late or duplicated echo)
        raise Todo("ask(): send the message, wait for its echo")
    return None  # no echo after TRIES sends


def main() -> int:
    host, port = sys.argv[1], int(sys.argv[2])
    try:
        # TODO(socket): the server's address (socket.getaddrinfo(), or just (host, port) with an IP),
        # and a UDP socket (SOCK_DGRAM): no connection to make
        raise Todo("main(): create the UDP socket")
        for arg in sys.argv[3:]:
            message = os.fsencode(arg)
            reply = ask(sock, server, message)  # noqa: F821 (sock, server: yours to create)
            if reply is None:
                print(f"error: no echo of {message[:40]!r} from {host}:{port} after {TRIES} tries", file=sys.stderr)
                return 1
            sys.stdout.buffer.write(reply + b"\n")
            sys.stdout.flush()
    except Todo as todo:
        print(f"starter: TODO(socket) not written yet in client.py: {todo}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
