"""Your UDP echo server: each datagram back, unchanged, to whoever sent it.

    python3 server.py PORT

Fill in the places marked TODO(socket); `make check-udp SOLUTION=labs/udp/starter`
(or a copy of this folder) tells you which pitfall each check found.
The rules (labs/udp/README.md, "Your own server and client"):
- echo each datagram, 0 to 65507 bytes, unchanged, to the address it came from;
- one socket serves every client: there is no accept() and no connection;
- any bytes at all: nothing is decoded; an empty datagram is not a client leaving.
"""

import socket
import sys

MAX_DATAGRAM = 65535  # more than any UDP payload (65507 bytes over IPv4)


class Todo(Exception):
    """A part left for you to write."""


def main() -> int:
    port = int(sys.argv[1])
    try:
        # TODO(socket): a UDP socket (SOCK_DGRAM), bound to ("0.0.0.0", port); no listen(), no accept()
        raise Todo("main(): create the UDP socket and bind it")
        while True:
            # TODO(socket): recvfrom() the next datagram and its sender's address: ask for MAX_DATAGRAM
            # bytes (recvfrom(1024) silently discards the rest of a bigger datagram); b"" is an empty
            # datagram, not the end
            raise Todo("main(): receive a datagram with recvfrom()")
            # TODO(socket): sendto() the same bytes to the address that recvfrom() just returned
    except Todo as todo:
        print(f"starter: TODO(socket) not written yet in server.py: {todo}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
