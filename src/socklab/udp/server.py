"""The UDP echo server: one datagram in, the same datagram out.

    python -m socklab server udp                        # echo everything
    python -m socklab server udp --drop 0.3 --seed 7    # lose 30%, replayably

Built on CPython's socketserver.UDPServer: one socket serves every client,
with no accept() and no connection -- each ``recvfrom`` says who sent that
datagram, and the reply goes back to that address with ``sendto``. One thread
is enough: an echo never waits on a client, so nobody can hold the others up.

``--drop`` makes loss visible on a network that never loses anything. Each
client address gets its own ``random.Random(seed)``, so the n-th datagram a
client sends is dropped or not by the n-th draw of that stream: a client run
sees the same drops every time, whatever other clients did before it.

Nothing a client sends is parsed to decide anything, so garbage is echoed
like the rest; a datagram that is a ping gets its sequence number logged.
"""

from __future__ import annotations

import argparse
import logging
import random
import socket
import socketserver
from collections import OrderedDict
from typing import Any

from socklab import DEFAULT_PORTS
from socklab.server import logs_as, peer_name, serve_forever
from socklab.udp import protocol as p

log = logging.getLogger("socklab")


class Dropper:
    """Decides which datagrams to drop: a fraction of them, replayably per peer."""

    #: Peers remembered; the least recently heard is forgotten first (a peer
    #: that comes back starts its stream over). Bounds the memory that a flood
    #: of datagrams from many (maybe spoofed) addresses can claim.
    max_peers = 1024

    def __init__(self, fraction: float = 0.0, seed: int | None = None) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"--drop must be between 0 and 1, not {fraction}")
        self.fraction = fraction
        self.seed = seed
        self._streams: OrderedDict[Any, random.Random] = OrderedDict()

    def should_drop(self, peer: Any) -> bool:
        if self.fraction == 0.0:
            return False
        stream = self._streams.get(peer)
        if stream is None:
            stream = self._streams[peer] = random.Random(self.seed)
            if len(self._streams) > self.max_peers:
                self._streams.popitem(last=False)
        self._streams.move_to_end(peer)
        return stream.random() < self.fraction


class EchoHandler(socketserver.BaseRequestHandler):
    """Serves one datagram: for a UDPServer, ``request`` is (data, socket)."""

    server: UdpEchoServer

    def handle(self) -> None:
        data, sock = self.request
        peer = peer_name(self.client_address)
        what = p.describe(data)
        if self.server.dropper.should_drop(self.client_address):
            self.server.dropped += 1
            log.info("%s %s: DROPPED (--drop %g)", peer, what, self.server.dropper.fraction)
            return
        try:
            sock.sendto(data, self.client_address)
        except OSError as exc:
            # e.g. a source address nobody can answer (port 0, broadcast):
            # that client gets nothing, the others keep being served.
            log.warning("%s %s: cannot echo it: %s", peer, what, exc.strerror or exc)
            return
        self.server.echoed += 1
        log.info("%s %s: echoed", peer, what)


class UdpEchoServer(socketserver.UDPServer):
    # socketserver's default is 8192: recvfrom would silently cut any bigger
    # datagram (UDP hands over what fits and discards the rest). 65535 holds
    # the biggest datagram IPv4 or IPv6 can carry.
    max_packet_size = 65535

    def __init__(self, address: tuple[str, int], drop: float = 0.0, seed: int | None = None) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.dropper = Dropper(drop, seed)
        self.echoed = self.dropped = 0
        super().__init__(address, EchoHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A bug of ours, not the client's doing: a traceback, and keep serving.
        log.exception("%s: unexpected error while serving this datagram", peer_name(client_address))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORTS["udp"], help="UDP port (default: %(default)s)")
    parser.add_argument("--drop", type=float, default=0.0, metavar="FRACTION",
                        help="drop this fraction of datagrams, e.g. 0.3 (default: none)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the drops, so a run can be replayed (default: a random one, logged)")


@logs_as("server")
def main(args: argparse.Namespace) -> int:
    seed = args.seed
    if args.drop and seed is None:
        seed = random.SystemRandom().randrange(2**31)
    try:
        server = UdpEchoServer((args.host, args.port), args.drop, seed)
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    with server:
        if args.drop:
            log.info("dropping %g of each client's datagrams, seed %d (--seed %d replays this run)",
                     args.drop, seed, seed)
        serve_forever(server, "udp echo server")
        log.info("echoed %d datagrams, dropped %d", server.echoed, server.dropped)
    return 0
