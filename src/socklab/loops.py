"""Three server loops for one handler: blocking, threaded, selectors.

The handler is a *session*: a per-connection object that knows the protocol
and nothing about sockets (bytes in, bytes out). Which loop feeds it is the
only difference between the modes, and it fits in a few lines:

    BlockingServer   socketserver.TCPServer's process_request: the accept
                     loop serves a client to the end before the next accept();
                     the others wait in the listen backlog (the tutorials)
    ThreadedServer   ThreadingMixIn's process_request (via LabTCPServer): a
                     thread per client, each blocked in its own recv()
    SelectorsServer  one thread, non-blocking sockets; selectors (epoll on
                     Linux) says which sockets are ready, and only those are
                     touched

    Session  <- SessionHandler (socketserver)  <- BlockingServer, ThreadedServer
             <- SelectorsServer (its own loop)

All three take (address, new_session, idle_timeout), have serve_forever(),
shutdown() and server_close() like socketserver's servers, and treat a client
the same way: one that vanishes, stalls or breaks the protocol loses its own
connection, with a log line, and the server goes on serving.
"""

from __future__ import annotations

import logging
import selectors
import socket
import socketserver
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from socklab.framing import PeerClosed
from socklab.server import TIMED_OUT, LabHandler, LabTCPServer, peer_name, serve_forever, set_kernel_timeout

log = logging.getLogger("socklab")

CHUNK = 64 * 1024
#: Selectors mode stops reading a client that has this much unsent output:
#: one that sends without reading must not make us buffer without end.
HIGH_WATER = 1 << 20
#: After our last words, how long to keep reading (and discarding) what the
#: peer still sends. Closing a socket with unread input sends RST, and an RST
#: can destroy our last words before the peer reads them.
LINGER = 2.0


class Session(Protocol):
    """The handler of one connection, shared by every loop. No sockets."""

    #: True once the session has nothing more to say: the loop sends what
    #: received() returned, then closes.
    finished: bool

    def received(self, data: bytes) -> bytes:
        """Bytes from the peer in, bytes to send back out (maybe none)."""

    def idle(self) -> bytes:
        """Last words for a peer that sent nothing for too long."""

    @property
    def midway(self) -> str:
        """What was left unfinished if the peer went away now; empty if nothing."""


SessionFactory = Callable[[str], Session]  # peer's name -> its session


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError:
        pass  # the peer is gone or stuck: last words are a courtesy, not a duty


def _linger(sock: socket.socket) -> None:
    """Half-close, then read and discard until the peer closes (bounded in time)."""
    try:
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(LINGER)
        deadline = time.monotonic() + LINGER
        while time.monotonic() < deadline and sock.recv(CHUNK):
            pass
    except OSError:
        pass


# --- blocking and threaded: socketserver owns the loop --------------------------


class SessionHandler(LabHandler):
    """Feeds one session from a blocking socket, in whatever thread the server chose."""

    server: _SessionTCPServer

    def setup(self) -> None:
        # LabHandler.setup, with the mode in the peer's name: a server may run
        # several; and the kernel's timeout, one system call per recv and send
        # (an echo's round trip is little else).
        self.peer = f"{peer_name(self.client_address)} ({self.server.mode})"
        set_kernel_timeout(self.request, self.server.idle_timeout)
        log.info("%s connected", self.peer)

    def serve(self) -> None:
        session = self.server.new_session(self.peer)
        try:
            while not session.finished:
                data = self._receive()
                if not data:
                    raise PeerClosed(session.midway)
                self.request.sendall(session.received(data))
        except TIMED_OUT:
            _send_quietly(self.request, session.idle())
            raise  # LabHandler logs it
        _linger(self.request)

    def _receive(self) -> bytes:
        """The next bytes from the client: recv() blocks, and here the thread waits for this one client.

        With busy polling, the thread first asks again and again without
        sleeping (MSG_DONTWAIT), for up to ``busy_poll`` seconds: data that
        arrives then is taken at once, without the wake-up of a sleeping
        thread that an echo's round trip otherwise pays, at the price of a
        core kept busy. After that, it sleeps in recv() as usual.
        """
        budget = self.server.busy_poll
        if budget:
            deadline = time.perf_counter() + budget
            while time.perf_counter() < deadline:
                try:
                    return self.request.recv(CHUNK, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    pass  # nothing yet: ask again
        return self.request.recv(CHUNK)


class _SessionTCPServer(LabTCPServer):
    mode = "?"

    def __init__(self, address: tuple[str, int], new_session: SessionFactory, idle_timeout: float,
                 busy_poll: float = 0.0) -> None:
        self.new_session = new_session
        self.busy_poll = busy_poll  # seconds; see SessionHandler._receive
        super().__init__(address, SessionHandler, idle_timeout)


class ThreadedServer(_SessionTCPServer):
    """A thread per client: LabTCPServer is ThreadingMixIn + TCPServer."""

    mode = "threaded"


class BlockingServer(_SessionTCPServer):
    """One client at a time, as the tutorials: no thread is started."""

    mode = "blocking"
    # TCPServer's own process_request calls the handler right here, in the
    # accept loop's thread, and returns only when that client is done.
    # ThreadingMixIn's version (inherited via LabTCPServer) starts a thread instead.
    process_request = socketserver.TCPServer.process_request


# --- selectors: one thread, the loop is ours -------------------------------------


@dataclass(eq=False)
class _Client:
    sock: socket.socket
    peer: str
    session: Session
    last_active: float
    out: bytearray = field(default_factory=bytearray)
    closing: bool = False  # reading is over: send what is left, then close
    peer_done: bool = False  # the peer closed its side (recv returned b"")
    linger_until: float | None = None  # our side is shut: discarding input until then
    closed: bool = False


class SelectorLoop:
    """socketserver's API around a one-thread selectors loop.

    ``serve_forever`` / ``shutdown`` (from another thread) / ``server_close``
    and the context manager, for the servers that wait on many sockets at once
    (the selectors echo server, the inspector's UDP proxy). A subclass hands
    over its bound socket and says what to do when it is ready
    (``_on_listener``), when another registered socket is (``_on_ready``, with
    the data it was registered with), and on every turn (``_tick``).
    """

    def __init__(self, sock: socket.socket) -> None:
        self.socket = sock
        self.socket.setblocking(False)  # a blocking call would stall the one thread
        self.server_address = sock.getsockname()
        self.selector = selectors.DefaultSelector()  # epoll on Linux
        self.selector.register(sock, selectors.EVENT_READ, None)
        self._stop = threading.Event()
        self._stopped = threading.Event()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server_close()

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self._stop.clear()
        self._stopped.clear()
        try:
            while not self._stop.is_set():
                for key, mask in self.selector.select(self._select_timeout(poll_interval)):
                    if key.data is None:
                        self._on_listener()
                    else:
                        self._on_ready(key.data, mask)
                self._tick(time.monotonic())
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop serve_forever (from another thread) and wait until it has."""
        self._stop.set()
        self._stopped.wait()

    def server_close(self) -> None:
        self._close_all()
        self.selector.close()
        self.socket.close()

    def _select_timeout(self, poll_interval: float) -> float:
        return poll_interval

    def _on_listener(self) -> None:
        raise NotImplementedError

    def _on_ready(self, data: Any, mask: int) -> None:
        raise NotImplementedError

    def _tick(self, now: float) -> None:
        raise NotImplementedError

    def _close_all(self) -> None:
        raise NotImplementedError


class SelectorsServer(SelectorLoop):
    """One thread serves every client: it only touches sockets that are ready."""

    mode = "selectors"
    # The listen backlog: connections the kernel completes before we accept
    # them. One thread accepts thousands a second, but 5,000 clients
    # connecting at once overflow a backlog of 64, and each client beyond it
    # waits for the kernel's SYN-ACK retries (1, 2, 4... s). The kernel caps
    # it at net.core.somaxconn.
    request_queue_size = socket.SOMAXCONN

    def __init__(self, address: tuple[str, int], new_session: SessionFactory, idle_timeout: float) -> None:
        self.new_session = new_session
        self.idle_timeout = idle_timeout
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        # create_server sets SO_REUSEADDR: a restarted server must not wait out TIME_WAIT.
        super().__init__(socket.create_server(address, family=family, backlog=self.request_queue_size))
        self._clients: dict[int, _Client] = {}

    def _on_listener(self) -> None:
        self._accept()

    def _on_ready(self, client: _Client, mask: int) -> None:
        self._service(client, mask)

    def _tick(self, now: float) -> None:
        self._expire(now)

    def _close_all(self) -> None:
        for client in list(self._clients.values()):
            self._close(client)

    def _accept(self) -> None:
        for _ in range(self.request_queue_size):  # bounded: a flood of connects must not starve the others
            try:
                sock, address = self.socket.accept()
            except BlockingIOError:
                return  # the backlog is empty
            except OSError as exc:  # e.g. EMFILE: out of descriptors; the backlog keeps the rest
                log.warning("accept failed: %s", exc.strerror or exc)
                return
            sock.setblocking(False)
            peer = f"{peer_name(address)} ({self.mode})"
            log.info("%s connected", peer)
            try:
                session = self.new_session(peer)
            except Exception:  # a bug of ours: this client is lost, the others are not
                log.exception("%s: unexpected error while serving this client", peer)
                sock.close()
                continue
            client = _Client(sock, peer, session, time.monotonic())
            self._clients[sock.fileno()] = client
            self.selector.register(sock, selectors.EVENT_READ, client)

    def _service(self, client: _Client, mask: int) -> None:
        try:
            if mask & selectors.EVENT_READ:
                self._read(client)
            if mask & selectors.EVENT_WRITE and not client.closed:
                self._write(client)
            self._update(client)
        except Exception:  # a bug of ours with this client: it must not stop the others
            log.exception("%s: unexpected error while serving this client", client.peer)
            self._close(client)

    def _expire(self, now: float) -> None:
        for client in list(self._clients.values()):
            try:
                self._expire_one(client, now)
            except Exception:  # as in _service
                log.exception("%s: unexpected error while serving this client", client.peer)
                self._close(client)

    def _read(self, client: _Client) -> None:
        try:
            data = client.sock.recv(CHUNK)
        except BlockingIOError:
            return  # readiness was stale: nothing to read after all
        except OSError as exc:
            log.warning("%s connection lost: %s", client.peer, exc.strerror or exc)
            return self._close(client)
        if client.linger_until is not None:
            if not data:
                self._close(client)  # the peer has read our last words and closed
            return
        if not data:
            midway = client.session.midway
            if midway:
                log.warning("%s vanished in the middle of a message: %s", client.peer, midway)
            else:
                log.info("%s closed the connection", client.peer)
            client.closing = client.peer_done = True
        else:
            client.last_active = time.monotonic()
            client.out += client.session.received(data)
            client.closing = client.session.finished
        self._write(client)

    def _write(self, client: _Client) -> None:
        if client.out:
            try:
                sent = client.sock.send(client.out)  # may take only part: the rest waits for EVENT_WRITE
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                log.warning("%s connection lost: %s", client.peer, exc.strerror or exc)
                return self._close(client)
            del client.out[:sent]
            if sent:
                client.last_active = time.monotonic()
        if client.closing and not client.out and client.linger_until is None:
            if client.peer_done:
                return self._close(client)
            try:
                client.sock.shutdown(socket.SHUT_WR)
            except OSError:
                return self._close(client)
            client.linger_until = time.monotonic() + LINGER

    def _update(self, client: _Client) -> None:
        """Watch for what this client can do next: read, write, or both."""
        if client.closed:
            return
        events = 0
        if client.linger_until is not None or (not client.closing and len(client.out) < HIGH_WATER):
            events |= selectors.EVENT_READ
        if client.out:
            events |= selectors.EVENT_WRITE
        if not events:
            return self._close(client)
        if self.selector.get_key(client.sock).events != events:
            self.selector.modify(client.sock, events, client)

    def _expire_one(self, client: _Client, now: float) -> None:
        if client.linger_until is not None:
            if now > client.linger_until:
                self._close(client)
        elif now - client.last_active > self.idle_timeout:
            if client.closing or client.out:
                # Replies are still queued: the peer stopped reading, it did not go quiet.
                log.warning("%s read nothing of our replies for %g s (%d bytes waiting): closing its connection",
                            client.peer, self.idle_timeout, len(client.out))
                return self._close(client)
            log.warning("%s sent nothing for %g s: closing its connection", client.peer, self.idle_timeout)
            client.out += client.session.idle()
            client.closing = True
            self._write(client)
            self._update(client)

    def _close(self, client: _Client) -> None:
        if client.closed:
            return
        client.closed = True
        del self._clients[client.sock.fileno()]
        self.selector.unregister(client.sock)
        client.sock.close()


MODES: dict[str, type] = {"blocking": BlockingServer, "threaded": ThreadedServer, "selectors": SelectorsServer}


def serve_all(servers: list[tuple[object, str]]) -> None:
    """Serve each (server, description) until Ctrl-C or SIGTERM; the first in this thread.

    Signals are delivered to the main thread only, so the first server runs
    here and socklab.server.serve_forever stops it; the others run in daemon
    threads that end with the process (stopping them politely could wait for a
    blocking server's current client).
    """
    (first, what), others = servers[0], servers[1:]
    for server, description in others:
        log.info("%s listening on %s", description, peer_name(server.server_address[:2]))
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True, name=description).start()
    try:
        serve_forever(first, what)
    finally:
        for server, _ in others:
            server.server_close()
