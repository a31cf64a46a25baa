"""The echo server: each line comes back upper-cased (or unchanged), in any of three loops.

``EchoSession`` is the handler, written once: bytes in, bytes out, no socket.
``--mode`` only chooses the loop that feeds it (see socklab.loops)::

    python -m socklab server echo --mode blocking     # one client at a time
    python -m socklab server echo --mode threaded     # a thread per client
    python -m socklab server echo --mode selectors    # one thread, epoll
    python -m socklab server echo --busy-poll 20      # threaded, spinning 20 ms for each next line

Several modes at once listen on consecutive ports, so a lab can compare them
against one running server: ``--mode blocking threaded selectors`` serves
blocking on 7007, threaded on 7008 and selectors on 7009.
"""

from __future__ import annotations

import argparse
import logging

from socklab import DEFAULT_PORTS
from socklab.echo import protocol as p
from socklab.framing import NEED_DATA, RemoteProtocolError
from socklab.loops import MODES, serve_all
from socklab.server import logs_as

log = logging.getLogger("socklab")


class EchoSession:
    """One client's conversation: lines in, replies out."""

    def __init__(self, peer: str, reply: str = "upper", idle_timeout: float = 60.0) -> None:
        p.reply_to(b"", reply)  # an unknown reply mode fails here, not at the first line
        self.peer, self.reply, self.idle_timeout = peer, reply, idle_timeout
        self.decoder = p.LineDecoder()
        self.finished = False

    def received(self, data: bytes) -> bytes:
        self.decoder.feed(data)
        replies = []
        try:
            # recv may have returned several lines at once, or the end of one
            # and the start of the next: answer every whole line, keep the rest.
            while (event := self.decoder.next_event()) is not NEED_DATA:
                replies.append(p.reply_to(event.data, self.reply) + p.LF)
        except RemoteProtocolError as exc:
            log.warning("%s broke the protocol: %s", self.peer, exc)
            replies.append(p.error_line(p.ErrorCode.LINE_TOO_LONG, str(exc)))
            self.finished = True
        return b"".join(replies)

    def idle(self) -> bytes:
        return p.error_line(p.ErrorCode.IDLE_TIMEOUT, f"nothing received for {self.idle_timeout:g} s, closing")

    @property
    def midway(self) -> str:
        return f"{self.decoder.buffered} bytes of a line had arrived" if self.decoder.buffered else ""


def session_factory(reply: str, idle_timeout: float):
    """What a loop calls for each new connection: the peer's name -> its EchoSession."""
    return lambda peer: EchoSession(peer, reply, idle_timeout)


def create_server(mode: str, address: tuple[str, int], reply: str = "upper", idle_timeout: float = 60.0,
                  busy_poll: float = 0.0):
    """``busy_poll`` (seconds) is for the blocking and threaded loops, whose threads can spin."""
    if busy_poll and mode == "selectors":
        raise ValueError("busy polling is for the blocking and threaded modes: selectors waits for many sockets at once")
    spin = (busy_poll,) if busy_poll else ()  # SelectorsServer takes no such argument
    return MODES[mode](address, session_factory(reply, idle_timeout), idle_timeout, *spin)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORTS["echo"],
                        help="TCP port; with several modes, the first of consecutive ports (default: %(default)s)")
    parser.add_argument("--mode", nargs="+", choices=sorted(MODES), default=["threaded"], metavar="MODE",
                        help="server loop: blocking, threaded or selectors; several: one port each (default: threaded)")
    parser.add_argument("--reply", choices=p.REPLY_MODES, default="upper",
                        help="upper: reply upper-cased, as the tutorials; echo: reply unchanged (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="close a connection that sends nothing for this many seconds (default: %(default)s)")
    parser.add_argument("--busy-poll", type=float, default=0.0, metavar="MS",
                        help="blocking and threaded modes: after each line, ask for the next without sleeping "
                             "for up to MS milliseconds (lower latency, a busy core; default: 0, off)")


@logs_as("server")
def main(args: argparse.Namespace) -> int:
    if len(set(args.mode)) != len(args.mode):
        log.error("each mode may be given once: %s", " ".join(args.mode))
        return 2
    if args.busy_poll < 0 or (args.busy_poll and "selectors" in args.mode):
        log.error("--busy-poll takes a number of milliseconds, for the blocking and threaded modes only")
        return 2
    busy = f", busy polling {args.busy_poll:g} ms" if args.busy_poll else ""
    servers = []
    try:
        for offset, mode in enumerate(args.mode):
            server = create_server(mode, (args.host, args.port + offset), args.reply, args.timeout, args.busy_poll / 1000)
            servers.append((server, f"echo server ({mode}, reply {args.reply}{busy})"))
    except OSError as exc:
        log.error("cannot listen on %s port %s: %s", args.host, args.port + len(servers), exc.strerror or exc)
        for server, _ in servers:
            server.server_close()
        return 2
    serve_all(servers)
    return 0
