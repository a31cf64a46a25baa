"""Step 1: the tutorials' "Hello, World" web server, fixed for Python 3.

For each connection: read the request, send ``HTTP/1.1 200 OK``, an empty
line and ``Hello, World``, close. One client at a time, as in the tutorials.

What had to change from the tutorials' version, and why:

- ``send("HTTP/1.1 200 OK\\r\\n\\r\\n")`` fails on Python 3: sockets carry
  bytes, so the text is bytes (``b"..."``), and ``sendall`` replaces ``send``,
  which may send only part of it.
- One ``recv(1024)`` may hold part of the request, or not all of it: read up
  to the empty line that ends the head (bounded, with a timeout). Closing with
  request bytes still unread would make the kernel answer with RST, which can
  destroy the response before the browser reads it.
- A client that vanishes or sends nothing must not stop the server: each
  connection's errors are caught, and a silent client times out.

The response has no Content-Length: the browser knows the body has ended
because the server closes the connection. The real server (``server http``)
says how long each body is, so one connection can carry many requests.
"""

from __future__ import annotations

import argparse
import logging
import socket

from socklab import DEFAULT_PORTS
from socklab.server import logs_as, peer_name

log = logging.getLogger("socklab")

RESPONSE = b"HTTP/1.1 200 OK\r\n\r\nHello, World"
MAX_REQUEST = 64 * 1024
TIMEOUT = 10.0


def read_head(conn: socket.socket) -> bytes:
    """The request head, up to its empty line; at most MAX_REQUEST bytes."""
    data = b""
    while b"\r\n\r\n" not in data and b"\n\n" not in data and len(data) < MAX_REQUEST:
        piece = conn.recv(4096)
        if not piece:
            break  # the client closed (or half-closed) before finishing
        data += piece
    return data


def serve_one(listener: socket.socket) -> None:
    conn, address = listener.accept()
    peer = peer_name(address)
    with conn:
        try:
            conn.settimeout(TIMEOUT)
            head = read_head(conn)
            first_line = head.split(b"\r\n", 1)[0].decode("latin-1", "replace")
            log.info("%s %r", peer, first_line)
            conn.sendall(RESPONSE)
            conn.shutdown(socket.SHUT_WR)  # FIN: "that was the whole body"
        except (OSError, socket.timeout) as exc:
            log.warning("%s: %s", peer, exc)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORTS["http"], help="TCP port (default: %(default)s)")
    parser.add_argument("--once", action="store_true", help="serve one connection, then exit")


@logs_as("hello")
def main(args: argparse.Namespace) -> int:
    # SO_REUSEADDR (create_server sets it): after Ctrl-C the port stays in
    # TIME_WAIT for a while, and without it a restart fails "address in use".
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    with socket.create_server((args.host, args.port), family=family, backlog=5) as listener:
        log.info("hello world server listening on %s", peer_name(listener.getsockname()))
        try:
            while True:
                serve_one(listener)
                if args.once:
                    break
        except KeyboardInterrupt:
            log.info("stopping")
    return 0
