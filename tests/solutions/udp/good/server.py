"""UDP echo server, as a student could write it: each datagram back to its sender.

    python3 server.py PORT
"""

import socket
import sys

# More than any UDP payload (65507 bytes over IPv4): recvfrom(n) returns at
# most n bytes and silently discards the rest of the datagram.
MAX_DATAGRAM = 65535


def main() -> int:
    port = int(sys.argv[1])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("0.0.0.0", port))
        while True:
            # b"" is an empty datagram, not a client leaving: it is echoed too.
            data, address = sock.recvfrom(MAX_DATAGRAM)
            try:
                sock.sendto(data, address)  # to this datagram's sender: one socket serves every client
            except OSError as exc:
                print(f"cannot answer {address}: {exc.strerror or exc}", file=sys.stderr)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
