"""Server plumbing shared by the TCP exercises.

Modelled on CPython's socketserver, which it builds on: the server owns the
accept loop and the concurrency; a handler object serves one connection.

    socketserver.TCPServer           accept loop, one client at a time
      + ThreadingMixIn               a thread per connection
      = LabTCPServer                 + logging, idle timeout, SIGTERM,
                                       a cap on connections at once
    socketserver.BaseRequestHandler
      = LabHandler                   + the ways a client can vanish, logged
        -> each exercise's handler implements serve()

What a single client does -- vanish mid-transfer, send garbage, go silent --
ends that client's connection with a log line. It never reaches the accept
loop, so the server keeps serving everyone else.

A thread per connection is the lesson of the threaded mode, and its cost: a
thousand idle peers are a thousand threads, and threads count against the
container's pids limit (docker-compose.yml sizes it for ``max_connections``).
One connection over the cap -- or one the kernel gives no thread -- is
refused with a log line and closed, instead of a traceback per connection.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import queue
import signal
import socket
import socketserver
import struct
import sys
import termios
import threading
from typing import Any, Callable

from socklab.framing import LocalProtocolError, PeerClosed, ProtocolError

log = logging.getLogger("socklab")


class _LineWriter(threading.Thread):
    """Writes the log lines that serving threads queue, several per write when they pile up.

    A serving thread that wrote its own log line would hold the handler's
    lock through a write() -- a blocking call that releases the GIL -- and
    the other serving threads would queue behind the lock, then for the GIL:
    under 8 keep-alive HTTP clients that was a sixth of the server's time.
    (logging.handlers.QueueListener would do the same with one write per
    line; this one joins the lines that wait into one write.)
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(name="log writer", daemon=True)
        self.stream = stream
        self.lines: queue.SimpleQueue = queue.SimpleQueue()

    def run(self) -> None:
        while (line := self.lines.get()) is not None:
            batch = [line]
            for _ in range(1000):  # what else is waiting, bounded
                try:
                    line = self.lines.get_nowait()
                except queue.Empty:
                    break
                if line is None:
                    return self._write(batch)
                batch.append(line)
            self._write(batch)

    def _write(self, batch: list[str]) -> None:
        try:
            self.stream.write("".join(batch))
            self.stream.flush()
        except (OSError, ValueError):
            pass  # stdout is gone (closed pipe): the server goes on without its log

    def stop(self) -> None:
        """Write what is queued, then end."""
        self.lines.put(None)
        self.join(timeout=5)


class _QueueLines(logging.Handler):
    def __init__(self, writer: _LineWriter) -> None:
        super().__init__()
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.writer.lines.put(self.format(record) + "\n")
        except Exception:
            self.handleError(record)

    def handle(self, record: logging.LogRecord) -> bool:
        # Handler.handle takes the handler's lock around emit(); a put() on a
        # SimpleQueue needs none, and the lock is what the writer thread is for.
        if self.filter(record):
            self.emit(record)
        return True


def logs_as(role: str) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """Decorates a server's main(): log lines "<role>: message" on stdout while it runs.

    One thread writes them (see _LineWriter); when main() returns, however it
    returns, what is queued is written before the caller sees the result.
    """
    def decorate(main: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(main)
        def run(*args: Any, **kwargs: Any) -> int:
            writer = _LineWriter(sys.stdout)
            handler = _QueueLines(writer)
            handler.setFormatter(logging.Formatter(f"{role}: %(message)s"))
            logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
            writer.start()
            try:
                return main(*args, **kwargs)
            finally:
                writer.stop()
        return run
    return decorate


def peer_name(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(address)


def unsent_bytes(sock: socket.socket) -> int:
    """Bytes we wrote that the peer has not acknowledged yet (Linux SIOCOUTQ)."""
    try:
        return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]
    except OSError:
        return 0


#: What a recv or send raises when its time runs out: Python's timeout
#: (settimeout) raises TimeoutError; the kernel's (set_kernel_timeout), EAGAIN.
TIMED_OUT = (TimeoutError, BlockingIOError)


def set_kernel_timeout(sock: socket.socket, seconds: float) -> None:
    """Make recv and send give up after ``seconds``, timed by the kernel.

    settimeout() times them in Python instead: the socket is made
    non-blocking and each recv or send is preceded by a poll(), two system
    calls instead of one. In a thread-per-client server each is a chance for
    another thread to take the GIL, and on an echo's round trip a few
    microseconds each way. The cost of the kernel's way: a timeout surfaces
    as BlockingIOError (EAGAIN), hence TIMED_OUT.
    """
    sock.settimeout(None)
    whole = int(seconds)
    value = struct.pack("ll", whole, int((seconds - whole) * 1_000_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)


def why_timed_out(sock: socket.socket, seconds: float) -> str:
    """A timeout means one of two things: the peer went quiet, or it stopped
    reading, so that our send queue filled and a send could not finish. The
    kernel's send queue tells which."""
    waiting = unsent_bytes(sock)
    if waiting:
        return f"read nothing of our replies for {seconds:g} s ({waiting} bytes wait in the send queue)"
    return f"sent nothing for {seconds:g} s"


class LabTCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True  # a restarted server must not wait out TIME_WAIT
    daemon_threads = True  # a stuck client must not keep the process alive on stop
    block_on_close = False
    request_queue_size = 64
    #: Connections served at once, a thread each; the next is refused until one ends.
    max_connections = 1024

    def __init__(self, address: tuple[str, int], handler: type[socketserver.BaseRequestHandler], idle_timeout: float):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.idle_timeout = idle_timeout
        self._slots = threading.BoundedSemaphore(self.max_connections)
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            return self._refuse(request, client_address, f"{self.max_connections} connections are open, the limit")
        try:
            super().process_request(request, client_address)  # ThreadingMixIn: starts the thread
        except RuntimeError as exc:  # "can't start new thread": most likely the container's pids limit
            self._slots.release()
            self._refuse(request, client_address, f"no thread to serve it ({exc})")

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _refuse(self, request: Any, client_address: Any, why: str) -> None:
        log.warning("%s refused: %s", peer_name(client_address), why)
        self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # LabHandler already reports what a client can do wrong; anything that
        # reaches here is a bug of ours, so it gets a traceback -- and the
        # server still goes on serving.
        log.exception("%s: unexpected error while serving this client", peer_name(client_address))


class LabHandler(socketserver.BaseRequestHandler):
    """Serves one connection: subclasses implement ``serve()``."""

    server: LabTCPServer

    def setup(self) -> None:
        self.peer = peer_name(self.client_address)
        self.request.settimeout(self.server.idle_timeout)
        log.info("%s connected", self.peer)

    def handle(self) -> None:
        try:
            self.serve()
        except PeerClosed as exc:
            if exc.midway:
                log.warning("%s vanished in the middle of a message: %s", self.peer, exc.midway)
            else:
                log.info("%s closed the connection", self.peer)
        except TIMED_OUT:
            log.warning("%s %s: closing its connection", self.peer, why_timed_out(self.request, self.server.idle_timeout))
        except (ConnectionResetError, BrokenPipeError) as exc:
            log.warning("%s connection lost: %s", self.peer, exc.strerror or exc)
        except LocalProtocolError as exc:
            # Our side cannot keep its promise (a file shrank while being sent):
            # the stream cannot be repaired, and it is not the peer's fault.
            log.error("%s: closing the connection, the fault is ours: %s", self.peer, exc)
        except ProtocolError as exc:
            log.warning("%s broke the protocol: %s", self.peer, exc)

    def serve(self) -> None:
        raise NotImplementedError


def _stop_on_sigterm() -> None:
    # In a container the server is PID 1, and the kernel ignores a signal that
    # PID 1 has no handler for: without this, `docker stop` waits 10 s and kills.
    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def serve_forever(server: socketserver.BaseServer, what: str) -> None:
    _stop_on_sigterm()
    host, port = server.server_address[:2]
    try:
        # Inside the try: a SIGTERM right after this line must stop us cleanly too.
        log.info("%s listening on %s", what, peer_name((host, port)))
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        log.info("stopping")
    finally:
        server.server_close()
