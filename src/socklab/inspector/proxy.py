"""An impairing proxy: a bad network in user space, where tc netem is missing.

    python -m socklab inspector proxy --listen 0.0.0.0:17007 --to 127.0.0.1:7007 --tcp --scenario slicer --seed 7
    python -m socklab inspector proxy --listen 0.0.0.0:19999 --to 127.0.0.1:9999 --udp --impair loss=0.2 --seed 50

It relays between clients and one server, doing to the traffic what the
impairment (socklab.inspector.impair) says: delay, jitter, a rate limit,
slicing, merging, a reset or silence after N bytes (TCP); loss, duplicates,
reordering and delay (UDP). Every random choice is seeded and the seed is
logged (and, with ``--record``, written to a file beside the capture).

TCP: a thread per connection (LabTCPServer), which connects upstream and runs
four more, two per direction, joined by a bounded queue::

    client --recv--> [reader] --queue--> [writer: merge, delay, slice, rate, cut] --send--> server
    client <--send-- [writer] <--queue-- [reader] <--recv-- server

The reader keeps reading while the writer waits, so a delay is latency, not a
slower sender. A FIN is passed on as a half-close (shutdown(SHUT_WR)) once what
came before it is out; a reset, or a side that vanishes, resets both sides
(SO_LINGER 0, then close). Sockets are closed only after the four threads are
done, and every wait is short (POLL), so that an abort is noticed quickly.

UDP: one thread and selectors: the listening socket, one upstream socket per
client (connected to the server, so the server sees one peer per client), and
a heap of timed sends. Replies go back from the listening socket, which is
what a NAT REDIRECT in front of the proxy expects.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import logging
import queue
import random
import selectors
import socket
import socketserver
import struct
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from socklab.inspector.decoders import EXERCISES, MessageCutter, streams_for
from socklab.inspector.impair import (
    REORDER_HOLD,
    Decider,
    Impairment,
    ImpairmentError,
    cut_at,
    parse,
    scenario,
    segments,
)
from socklab.loops import SelectorLoop
from socklab.server import LabTCPServer, logs_as, peer_name, serve_forever, unsent_bytes
from socklab.udp import protocol as udp_protocol

log = logging.getLogger("socklab")

CHUNK = 64 * 1024
#: Chunks waiting between a reader and its writer: at most 1 MiB per direction.
QUEUE_CHUNKS = 16
#: Longest a thread blocks before it checks whether the connection was aborted.
POLL = 0.1
#: Merging never holds more than this: the rest waits for the next merge.
MERGE_MAX = 1 << 20
#: How long a reset waits for the bytes before it to be acknowledged.
DRAIN = 2.0
#: Per direction, the writes whose slicing or merging is logged; then a note.
LOGGED_WRITES = 20
UDP_MAX_CLIENTS = 256
UDP_IDLE = 120.0
UDP_MAX_PENDING = 10_000
UDP_RECV = 65536

_EOF = object()
_LINGER_RST = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST


# --- TCP ------------------------------------------------------------------------


class _Connection:
    """One relayed connection: two directions, and the abort that ends both."""

    def __init__(self, client: socket.socket, upstream: socket.socket, impairment: Impairment, name: str,
                 exercise: str = "") -> None:
        self.client, self.upstream, self.name = client, upstream, name
        self.aborted = threading.Event()
        self._lock = threading.Lock()
        # frames=: each direction cut at message ends by the exercise's decoder
        # (a fresh pair per connection: the two directions may share state).
        streams = streams_for(exercise) if impairment.frames else None
        cutters = [MessageCutter(s) for s in streams] if streams else [None, None]
        self.directions = [
            _Direction(self, client, upstream, "to-server", "client->server", impairment, cutter=cutters[0]),
            _Direction(self, upstream, client, "to-client", "server->client", impairment, cutter=cutters[1]),
        ]

    def run(self) -> None:
        for sock in (self.client, self.upstream):
            sock.settimeout(POLL)
        threads = [threading.Thread(target=target, daemon=True, name=f"{self.name} {d.label} {target.__name__}")
                   for d in self.directions for target in (d.read, d.write)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for sock in (self.client, self.upstream):
            sock.close()  # after an abort, SO_LINGER 0 makes this an RST
        log.info("%s closed (%s)", self.name, ", ".join(f"{d.label} {d.passed} bytes" for d in self.directions))

    def abort(self, reason: str) -> None:
        """Reset both sides: they get RST when run() closes the sockets, in at most POLL."""
        with self._lock:
            if self.aborted.is_set():
                return
            self.aborted.set()
        log.warning("%s: %s: resetting both sides", self.name, reason)
        for sock in (self.client, self.upstream):
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
            except OSError:
                pass


@dataclass(eq=False)
class _Direction:
    conn: _Connection
    src: socket.socket
    dst: socket.socket
    direction: str  # to-server or to-client, as Impairment.applies() says
    label: str
    impairment: Impairment
    cutter: MessageCutter | None = None  # frames=: where messages end
    passed: int = 0  # bytes sent on
    blackholed: bool = False
    logged: int = 0
    queue: queue.Queue = field(default_factory=lambda: queue.Queue(QUEUE_CHUNKS))

    def __post_init__(self) -> None:
        self.decider = Decider(self.impairment, self.direction)
        self.on = self.impairment.applies(self.direction)
        self.release = 0.0  # when the last write went: writes keep their order
        self.rate_clock = 0.0  # when the link is free again, at the rate limit
        self.sliced_at = 0.0  # when the last slice went: the next one waits the gap, even from the next write

    # reader thread: as fast as the source sends, into the bounded queue
    def read(self) -> None:
        aborted = self.conn.aborted
        while not aborted.is_set():
            try:
                data = self.src.recv(CHUNK)
            except socket.timeout:
                continue
            except OSError as exc:
                if not aborted.is_set():
                    self.conn.abort(f"{self.label.split('->')[0]} connection lost ({exc.strerror or exc})")
                return
            self._put(_EOF if not data else (time.monotonic(), data))
            if not data:
                return

    def _put(self, item: object) -> None:
        while not self.conn.aborted.is_set():
            try:
                return self.queue.put(item, timeout=POLL)
            except queue.Full:
                continue  # the writer is behind (delay, rate): the source waits, as on a slow link

    def _get(self, timeout: float = POLL) -> object:
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None

    # writer thread: impairs and sends on
    def write(self) -> None:
        aborted = self.conn.aborted
        pending_eof = False
        while not aborted.is_set() and not pending_eof:
            item = self._get()
            if item is None:
                continue
            if item is _EOF:
                break
            arrived, data = item
            if self.on and self.impairment.merge and not self.blackholed:
                data, writes, pending_eof = self._merge(arrived, data)
                if writes > 1:
                    self._note(f"merged {writes} writes ({len(data)} bytes) into one")
            if not self._send_impaired(arrived, data):
                return
        if aborted.is_set():
            return
        if self.blackholed:
            log.info("%s %s: FIN swallowed (blackhole)", self.conn.name, self.label)
            return
        try:
            self.dst.shutdown(socket.SHUT_WR)
            log.info("%s %s: FIN passed on (half-close)", self.conn.name, self.label)
        except OSError:
            pass

    def _merge(self, arrived: float, data: bytes) -> tuple[bytes, int, bool]:
        merged, writes = bytearray(data), 1
        deadline = arrived + self.impairment.merge
        while len(merged) < MERGE_MAX and not self.conn.aborted.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            item = self._get(min(left, POLL))
            if item is _EOF:
                return bytes(merged), writes, True
            if item is not None:
                merged += item[1]
                writes += 1
        return bytes(merged), writes, False

    def _send_impaired(self, arrived: float, data: bytes) -> bool:
        """Sends one write as the impairment says; False once this direction is over."""
        if self.blackholed:
            return True  # swallowed
        if not self.on:
            return self._send(data)
        imp = self.impairment
        if imp.frames and self.cutter:
            return self._send_messages(data)
        self.release = max(arrived + self.decider.delay(), self.release)
        if not self._wait_until(self.release):
            return False
        # A rate limit without slicing still goes in small pieces, so it is smooth.
        piece_size = imp.slice_size or (max(1, min(4096, int(imp.rate) // 50)) if imp.rate else 0)
        pieces = segments(data, piece_size)
        if imp.slice_size and len(pieces) > 1:
            self._note(f"{len(data)} bytes sliced into {len(pieces)} segments of at most {imp.slice_size}")
        for piece in pieces:
            # The gap also runs across writes: a sender's back-to-back writes (a header, then
            # a body) would otherwise put two slices in one recv() of the receiver.
            if imp.slice_size and not self._wait_until(self.sliced_at + imp.slice_gap):
                return False
            piece, reset = cut_at(imp.reset_after, self.passed, piece)
            piece, silence = cut_at(imp.blackhole_after, self.passed, piece)
            if imp.rate and piece:
                if not self._wait_until(self.rate_clock):
                    return False
                self.rate_clock = max(time.monotonic(), self.rate_clock) + len(piece) / imp.rate
            if piece and not self._send(piece):
                return False
            self.sliced_at = time.monotonic()
            if reset:
                self._drain()
                self.conn.abort(f"{self.label} reset after {self.passed} bytes (reset={imp.reset_after})")
                return False
            if silence:
                self.blackholed = True
                log.warning("%s %s: silent after %d bytes (blackhole): nothing more passes, the connection stays open",
                            self.conn.name, self.label, self.passed)
                return True
        return True

    def _send_messages(self, data: bytes) -> bool:
        """frames=: each message its own write, the next one ``frames`` later."""
        for piece, ends_message in self.cutter.cut(data):
            if not self._wait_until(self.release) or not self._send(piece):
                return False
            if ends_message:
                self.release = time.monotonic() + self.impairment.frames
        return True

    def _send(self, data: bytes) -> bool:
        view = memoryview(data)
        while view and not self.conn.aborted.is_set():
            try:
                sent = self.dst.send(view)
            except socket.timeout:
                continue  # the receiver is not reading: wait, checking for an abort
            except OSError as exc:
                self.conn.abort(f"{self.label.split('->')[1]} connection lost ({exc.strerror or exc})")
                return False
            view = view[sent:]
            self.passed += sent
        return not view

    def _wait_until(self, when: float) -> bool:
        while not self.conn.aborted.is_set():
            left = when - time.monotonic()
            if left <= 0:
                return True
            time.sleep(min(left, POLL))
        return False

    def _drain(self) -> None:
        """Wait (bounded) until what we sent is acknowledged: an RST discards the rest."""
        deadline = time.monotonic() + DRAIN
        while unsent_bytes(self.dst) and time.monotonic() < deadline:
            time.sleep(0.01)

    def _note(self, message: str) -> None:
        self.logged += 1
        if self.logged <= LOGGED_WRITES:
            log.info("%s %s: %s", self.conn.name, self.label, message)
        elif self.logged == LOGGED_WRITES + 1:
            log.info("%s %s: (more of the same, not logged)", self.conn.name, self.label)


class ProxyHandler(socketserver.BaseRequestHandler):
    """Relays one client connection to the server, impaired."""

    server: TcpProxy

    def handle(self) -> None:
        number = next(self.server.numbers)
        name = f"#{number} {peer_name(self.client_address)}"
        try:
            upstream = socket.create_connection(self.server.target, timeout=5)
        except OSError as exc:
            log.warning("%s: cannot reach the server at %s (%s): resetting the client", name,
                        peer_name(self.server.target), exc.strerror or exc)
            self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
            self.request.close()
            return
        log.info("%s connected; relaying to %s", name, peer_name(self.server.target))
        for sock in (self.request, upstream):
            # No Nagle: each write leaves as its own segment, so the slices
            # the impairment makes are the segments the capture shows.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Connection(self.request, upstream, self.server.impairment, name, self.server.exercise)
        with self.server.lock:
            self.server.connections.add(conn)
        try:
            conn.run()
        finally:
            with self.server.lock:
                self.server.connections.discard(conn)


class TcpProxy(LabTCPServer):
    """Accepts clients and relays each to ``target`` in its own thread."""

    def __init__(self, address: tuple[str, int], target: tuple[str, int], impairment: Impairment,
                 exercise: str = "") -> None:
        self.target = target
        self.impairment = impairment.check("tcp")
        if self.impairment.frames and not exercise:
            raise ImpairmentError("frames= cuts the stream at message ends: it needs --exercise (ftp, echo...)")
        self.exercise = exercise
        self.connections: set[_Connection] = set()
        self.lock = threading.Lock()
        self.numbers = itertools.count(1)
        super().__init__(address, ProxyHandler, idle_timeout=POLL)

    def server_close(self) -> None:
        super().server_close()
        with self.lock:
            live = list(self.connections)
        for conn in live:
            conn.abort("the proxy is stopping")


# --- UDP ------------------------------------------------------------------------


@dataclass(eq=False)
class _UdpClient:
    address: Any
    name: str
    upstream: socket.socket
    deciders: dict[str, Decider]
    last_active: float
    counts: dict[str, int] = field(default_factory=lambda: {"to-server": 0, "to-client": 0})
    held: dict[str, _Send] = field(default_factory=dict)  # direction -> the datagram held back


@dataclass(eq=False)
class _Send:
    """A datagram on its way: sent when its timer fires (or, if held, when overtaken)."""

    client: _UdpClient
    direction: str
    data: bytes
    copies: int
    held: bool = False
    done: bool = False


class UdpProxy(SelectorLoop):
    """Relays datagrams between clients and ``target``, impaired; one thread."""

    def __init__(self, address: tuple[str, int], target: tuple[str, int], impairment: Impairment) -> None:
        self.target = target
        self.impairment = impairment.check("udp")
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.bind(address)
        super().__init__(sock)
        self.clients: OrderedDict[Any, _UdpClient] = OrderedDict()
        self._timers: list[tuple[float, int, _Send]] = []  # (when, tie-breaker, datagram)
        self._ties = itertools.count()
        self.dropped = self.relayed = 0

    def _select_timeout(self, poll_interval: float) -> float:
        # wake for the next held datagram, not only every poll_interval
        if self._timers:
            return max(0.0, min(poll_interval, self._timers[0][0] - time.monotonic()))
        return poll_interval

    def _on_listener(self) -> None:
        self._from_clients()

    def _on_ready(self, client: _UdpClient, mask: int) -> None:
        self._from_server(client)

    def _tick(self, now: float) -> None:
        self._fire_timers(now)
        self._expire(now)

    def _close_all(self) -> None:
        for client in list(self.clients.values()):
            self._forget(client)

    def _client(self, address: Any) -> _UdpClient | None:
        client = self.clients.get(address)
        if client is None:
            upstream = socket.socket(self.socket.family, socket.SOCK_DGRAM)
            try:
                upstream.connect(self.target)
            except OSError as exc:
                log.warning("%s: cannot reach the server at %s (%s)", peer_name(address), peer_name(self.target), exc)
                upstream.close()
                return None
            upstream.setblocking(False)
            deciders = {d: Decider(self.impairment, d) for d in ("to-server", "to-client")}
            client = _UdpClient(address, peer_name(address), upstream, deciders, time.monotonic())
            self.clients[address] = client
            self.selector.register(upstream, selectors.EVENT_READ, client)
            log.info("%s: new client, relayed from %s", client.name, peer_name(upstream.getsockname()))
            if len(self.clients) > UDP_MAX_CLIENTS:
                self._forget(next(iter(self.clients.values())))
        self.clients.move_to_end(address)
        client.last_active = time.monotonic()
        return client

    def _from_clients(self) -> None:
        for _ in range(64):  # bounded: a flood from clients must not starve the replies
            try:
                data, address = self.socket.recvfrom(UDP_RECV)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. an ICMP error for an earlier sendto
                log.info("receive from clients: %s", exc.strerror or exc)
                continue
            client = self._client(address)
            if client is not None:
                self._decide(client, "to-server", data)

    def _from_server(self, client: _UdpClient) -> None:
        for _ in range(64):
            try:
                data = client.upstream.recv(UDP_RECV)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # ConnectionRefusedError: ICMP port unreachable from the server
                log.warning("%s: the server: %s", client.name, exc.strerror or exc)
                return
            client.last_active = time.monotonic()
            self._decide(client, "to-client", data)

    def _decide(self, client: _UdpClient, direction: str, data: bytes) -> None:
        client.counts[direction] += 1
        fate = client.deciders[direction].datagram()
        arrow = "->" if direction == "to-server" else "<-"
        log.info("%s %s server #%d %s: %s", client.name, arrow, client.counts[direction],
                 udp_protocol.describe(data), fate.describe())
        if fate.drop:
            self.dropped += 1
            return
        if len(self._timers) >= UDP_MAX_PENDING:
            log.warning("%s: %d datagrams already wait: this one is dropped", client.name, len(self._timers))
            self.dropped += 1
            return
        send = _Send(client, direction, data, fate.copies)
        now = time.monotonic()
        if fate.hold:
            earlier = client.held.pop(direction, None)
            if earlier is not None:  # one held at a time: the earlier one goes now
                self._send(earlier)
            send.held = True
            client.held[direction] = send
            self._push(now + fate.delay + REORDER_HOLD, send)  # if nothing overtakes it by then
        else:
            self._push(now + fate.delay, send)

    def _push(self, when: float, send: _Send) -> None:
        heapq.heappush(self._timers, (when, next(self._ties), send))

    def _fire_timers(self, now: float) -> None:
        while self._timers and self._timers[0][0] <= now:
            _, _, send = heapq.heappop(self._timers)
            if send.done:
                continue  # a held one that was sent after the one that overtook it
            if send.held:  # its hold is over: nothing overtook it
                send.client.held.pop(send.direction, None)
                self._send(send)
                continue
            self._send(send)
            overtaken = send.client.held.pop(send.direction, None)
            if overtaken is not None:
                self._send(overtaken)

    def _send(self, send: _Send) -> None:
        send.done = True
        client = send.client
        if client.address not in self.clients:
            return  # forgotten meanwhile
        for _ in range(send.copies):
            try:
                if send.direction == "to-server":
                    client.upstream.send(send.data)
                else:
                    self.socket.sendto(send.data, client.address)
                self.relayed += 1
            except OSError as exc:
                log.warning("%s: cannot send %s: %s", client.name, send.direction, exc.strerror or exc)

    def _expire(self, now: float) -> None:
        for client in list(self.clients.values()):
            if now - client.last_active > UDP_IDLE:
                self._forget(client)

    def _forget(self, client: _UdpClient) -> None:
        self.clients.pop(client.address, None)
        try:
            self.selector.unregister(client.upstream)
        except (KeyError, ValueError):
            pass
        client.upstream.close()


# --- command line ---------------------------------------------------------------


def address(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[v6]:PORT`` or ``:PORT`` (all addresses)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: HOST:PORT, e.g. 0.0.0.0:17007 or server:7007")
    return host.strip("[]") or "0.0.0.0", int(port)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", type=address, required=True, metavar="HOST:PORT", help="where clients connect")
    parser.add_argument("--to", type=address, required=True, metavar="HOST:PORT", help="the server to relay to")
    transport = parser.add_mutually_exclusive_group(required=True)
    transport.add_argument("--tcp", dest="transport", action="store_const", const="tcp", help="relay TCP")
    transport.add_argument("--udp", dest="transport", action="store_const", const="udp", help="relay UDP")
    parser.add_argument("--scenario", default="", metavar="NAME",
                        help="slicer, merger, slow, reset, blackhole, lossy, or a file holding a spec")
    parser.add_argument("--impair", default="", metavar="SPEC",
                        help="e.g. delay=50ms,jitter=10ms or loss=0.2,dup=0.05 (after --scenario: overrides it)")
    parser.add_argument("--exercise", default="", choices=["", *EXERCISES],
                        help="the protocol relayed, for frames= (which needs to know where messages end)")
    parser.add_argument("--seed", type=int, default=None, help="seed of every random choice (default: a random one, logged)")
    parser.add_argument("--record", default="", metavar="FILE",
                        help="also write the impairment and its seed to this file, e.g. /out/impairment.txt")


def impairment_from(args: argparse.Namespace) -> Impairment:
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    base = scenario(args.scenario, seed) if args.scenario else Impairment(seed=seed)
    return parse(args.impair, seed, base) if args.impair else base


@logs_as("proxy")
def main(args: argparse.Namespace) -> int:
    try:
        impairment = impairment_from(args)
        if args.transport == "tcp":
            proxy = TcpProxy(args.listen, args.to, impairment, args.exercise)
        else:
            proxy = UdpProxy(args.listen, args.to, impairment)
    except ImpairmentError as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:
        log.error("cannot listen on %s: %s", peer_name(args.listen), exc.strerror or exc)
        return 1
    log.info("%s", impairment.describe())
    if args.record:
        Path(args.record).write_text(impairment.describe() + "\n")
    serve_forever(proxy, f"{args.transport} proxy to {peer_name(args.to)}")
    if isinstance(proxy, UdpProxy):
        log.info("relayed %d datagrams, dropped %d", proxy.relayed, proxy.dropped)
    return 0
