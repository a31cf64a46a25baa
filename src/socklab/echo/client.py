"""The echo client: send a line, print the reply.

Usage, from the client container::

    python -m socklab client echo --host server hello world   # one line, one reply
    printf 'a\\nb\\n' | python -m socklab client echo           # each line of stdin
    python -m socklab client echo                             # echo> prompt; exit ends

``-v`` prints on stderr when the connection was made and how long each reply
took: against a blocking server busy with someone else, the connection is
made at once (the kernel completes the handshake and queues it in the
backlog) but the reply waits until that someone leaves.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from typing import BinaryIO, Iterable

from socklab import DEFAULT_PORTS
from socklab.connection import Connection, failure_reason
from socklab.echo import protocol as p
from socklab.framing import ProtocolError


class EchoError(Exception):
    """The server sent an ERROR line: it is closing the connection."""

    def __init__(self, error: p.ServerError) -> None:
        super().__init__(str(error))
        self.code = error.code


class EchoClient:
    def __init__(self, host: str, port: int = DEFAULT_PORTS["echo"], timeout: float = 30.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout

    def __enter__(self) -> EchoClient:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        # Replies may be up to 3 times longer than a line: upper-casing lengthens some text.
        self.conn = Connection(sock, p.LineDecoder(p.MAX_REPLY), p.encode_line, chunk_size=p.MAX_LINE)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.conn.close()

    def ask(self, line: bytes) -> bytes:
        """Send one line, return the server's reply (without its LF)."""
        self.conn.send(line)  # encode_line refuses an LF inside or an overlong line, before sending
        reply = self.conn.receive().data
        error = p.as_error(reply, line)
        if error is not None:
            raise EchoError(error)
        return reply


def _lines(args: argparse.Namespace) -> tuple[Iterable[bytes], bool]:
    """The lines to send, as bytes, and whether they come from a person at a prompt."""
    if args.words:
        # argv holds bytes that are not UTF-8 as surrogates: they go out unchanged
        return [" ".join(args.words).encode("utf-8", "surrogateescape")], False
    if sys.stdin.isatty():
        def prompt() -> Iterable[bytes]:
            while True:
                try:
                    line = input("echo> ")
                except EOFError:
                    print()
                    return
                if line.strip().lower() in ("exit", "quit"):
                    return
                yield line.encode("utf-8", "surrogateescape")
        return prompt(), True
    # Piped: every line is data, "exit" included, and bytes pass through as they are.
    return (line.rstrip(b"\n") for line in sys.stdin.buffer), False


def run(client: EchoClient, lines: Iterable[bytes], out: BinaryIO, verbose: bool) -> int:
    """Send each line, print each reply; the number of lines refused locally."""
    refused = 0
    for line in lines:
        if not line:
            # Never sent. In the tutorials' client (no framing), sending an
            # empty string is send(b""): nothing reaches the wire, so the
            # server's recv() goes on waiting for data -- and the client's
            # recv() waits for a reply to a message that never left. Both
            # block for ever. Here an empty line would be a lone LF and would
            # be answered, but its empty reply would look like no reply at all.
            continue
        started = time.monotonic()
        try:
            reply = client.ask(line)
        except p.LocalProtocolError as exc:
            print(f"error: not sent: {exc}", file=sys.stderr)
            refused += 1
            continue
        if verbose:
            print(f"reply after {time.monotonic() - started:.3f} s", file=sys.stderr)
        out.write(reply + p.LF)
        out.flush()
    return refused


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="server", help="server name or address (default: %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORTS["echo"], help="TCP port (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to wait for the connection and for each reply (default: %(default)s)")
    parser.add_argument("-v", "--verbose", action="store_true", help="on stderr: connect time and each reply's delay")
    parser.add_argument("words", nargs=argparse.REMAINDER,
                        help="send these words as one line and print the reply (none: stdin, or a prompt)")


def main(args: argparse.Namespace) -> int:
    lines, interactive = _lines(args)
    where = f"{args.host}:{args.port}"
    started = time.monotonic()
    try:
        with EchoClient(args.host, args.port, args.timeout) as client:
            if args.verbose:
                print(f"connected to {where} in {time.monotonic() - started:.3f} s", file=sys.stderr)
            refused = run(client, lines, sys.stdout.buffer, args.verbose)
    except EchoError as exc:
        print(f"error: the server closed the connection: {exc}", file=sys.stderr)
        return 1
    except socket.timeout:
        print(f"error: {where} did not answer within {args.timeout:g} s", file=sys.stderr)
        return 2
    except (OSError, ProtocolError) as exc:
        reason = failure_reason(exc)
        print(f"error: connection to {where} failed: {reason}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130 if not interactive else 0
    return 1 if refused else 0
