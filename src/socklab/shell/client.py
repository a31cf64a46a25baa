"""The shell client: send a command line, print what it wrote and how it ended.

Usage, from the client container::

    python -m socklab client shell --host server -c "ls -l"       # one command
    python -m socklab client shell --host server                  # >> prompt
    python -m socklab client shell --framing naive --expect misparse -c "echo hello"

Like ssh, a one-shot run exits with the remote command's status (128+N when
a signal N killed it), 126 when the server refused to run it, and 255 when
the connection or the framing failed. The naive and ack framings carry no
status: with them the client exits 0 whenever the reply was read.

In the naive and ack framings this client reads the length exactly as the
tutorials do, with one ``recv(1024)``; that is the bug the naive framing
shows. It never hangs: every read is bounded by ``--timeout``.
"""

from __future__ import annotations

import argparse
import socket
import sys
from typing import BinaryIO, Iterable

from socklab import DEFAULT_PORTS
from socklab.connection import failure_reason
from socklab.framing import NEED_DATA, LocalProtocolError, PeerClosed, ProtocolError
from socklab.shell import protocol as p

READ_SIZE = 64 * 1024
EXIT_REFUSED, EXIT_FAILED = 126, 255
SHOWN_WHEN_EXPECTING = 200


class ShellClient:
    def __init__(self, host: str, port: int = DEFAULT_PORTS["shell"], framing: str = p.DEFAULT_FRAMING,
                 timeout: float = 30.0) -> None:
        p.hello(framing)  # an unknown framing fails here, before connecting
        self.host, self.port, self.framing, self.timeout = host, port, framing, timeout

    def __enter__(self) -> ShellClient:
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self.sock.sendall(p.hello(self.framing))
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.sock.close()

    def _recv(self, size: int, midway: str) -> bytes:
        try:
            data = self.sock.recv(size)
        except ConnectionResetError:
            raise PeerClosed(midway, reset=True) from None
        if not data:
            raise PeerClosed(midway)
        return data

    def run(self, command: str) -> p.Result:
        """Run ``command`` on the server. The naive/ack framings give only ``stdout`` (the blob)."""
        self.sock.sendall(p.encode_command(command))
        if self.framing == "length":
            return self._receive_result()
        return p.Result(stdout=self._receive_blob())

    def _receive_result(self) -> p.Result:
        decoder = p.LengthDecoder()
        while (event := decoder.next_event()) is NEED_DATA:
            decoder.feed(self._recv(READ_SIZE, f"{decoder.buffered} bytes of a reply had arrived" if decoder.buffered else ""))
        return event

    def _receive_blob(self) -> bytes:
        decoder = p.TutorialDecoder()
        # The tutorials' read of the length: one recv(1024), taken whole as the length.
        decoder.feed(self._recv(p.TUTORIAL_RECV, ""))
        announced = decoder.next_event()  # LengthAnnounced, or Misparse raised
        if self.framing == "ack":
            self.sock.sendall(p.ACK)  # "length read, send the output": the extra round trip
        while (event := decoder.next_event()) is NEED_DATA:
            midway = f"{announced.size - decoder.buffered} bytes of output still to come"
            try:
                decoder.feed(self._recv(min(READ_SIZE, announced.size - decoder.buffered), midway))
            except TimeoutError:
                if self.framing != "naive":
                    raise
                raise p.Misparse(
                    f"read a length of {announced.size} bytes, but only {decoder.buffered} came within "
                    f"{self.timeout:g} s: digits of the output were probably read as part of the length "
                    "(the sticky-packet problem)") from None
        return event.data


def show(result: p.Result, out: BinaryIO, err: BinaryIO, shown: int | None = None) -> int:
    """Print a result (at most ``shown`` bytes of stdout); its exit code, as ssh would give it."""
    out.write(result.stdout[:shown])
    if shown is not None and len(result.stdout) > shown:
        out.write(f"\n[... {len(result.stdout) - shown} more bytes not shown]\n".encode())
    out.flush()
    err.write(result.stderr)
    notes = []
    if result.timed_out:
        notes.append(f"killed after {result.elapsed_ms / 1000:.1f} s (the server's time limit)")
    if result.truncated:
        notes.append(f"output truncated at {len(result.stdout) + len(result.stderr)} bytes (the server's cap)")
    err.write("".join(f"socklab: {n}\n" for n in notes).encode())
    err.flush()
    if result.refused:
        return EXIT_REFUSED
    return 128 - result.status if result.status < 0 else result.status & 0xFF


def _prompt() -> Iterable[str]:
    while True:
        try:
            yield input(">> ")
        except EOFError:
            print()
            return


def _expectation_met(expect: str, result: p.Result | None, failure: Exception | None) -> tuple[bool, str]:
    if expect == "misparse":
        if isinstance(failure, p.Misparse):
            return True, f"as expected, the reply was misparsed: {failure}"
        return False, "expected a misparse, but the reply was read correctly"
    if failure is not None:
        return False, f"expected the command to be {expect}, but the exchange failed: {failure}"
    hit = result.timed_out if expect == "killed" else result.truncated
    if hit:
        return True, f"as expected, the server reported the command {expect}"
    return False, f"expected the command to be {expect}; it was not (the length framing is needed to see it)"


def _run_expecting(client: ShellClient, command: str, expect: str) -> int:
    result, failure = None, None
    try:
        result = client.run(command)
    except p.Misparse as exc:
        failure = exc
    if result is not None:
        # A lab's transcript wants the verdict, not 64 KiB of `yes`.
        show(result, sys.stdout.buffer, sys.stderr.buffer, shown=SHOWN_WHEN_EXPECTING)
    ok, message = _expectation_met(expect, result, failure)
    print(f"socklab: {message}", file=sys.stderr if not ok else sys.stdout, flush=True)
    return 0 if ok else 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="server", help="server name or address (default: %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORTS["shell"], help="TCP port (default: %(default)s)")
    parser.add_argument("--framing", default=p.DEFAULT_FRAMING, choices=p.FRAMINGS,
                        help="how replies are framed, announced to the server (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to wait for the server on any read (default: %(default)s)")
    parser.add_argument("-c", "--command", help="run this one command and exit with its status (none: prompt)")
    parser.add_argument("--expect", choices=("misparse", "killed", "truncated"),
                        help="with -c: exit 0 only if this failure is observed (for labs that show one)")


def main(args: argparse.Namespace) -> int:
    if args.expect and not args.command:
        print("error: --expect needs -c COMMAND", file=sys.stderr)
        return 2
    status = 0
    try:
        with ShellClient(args.host, args.port, args.framing, args.timeout) as client:
            if args.command is not None:
                if args.expect:
                    return _run_expecting(client, args.command, args.expect)
                return show(client.run(args.command), sys.stdout.buffer, sys.stderr.buffer)
            lines = _prompt() if sys.stdin.isatty() else sys.stdin
            for line in lines:
                line = line.rstrip("\r\n")
                if line.strip() in ("exit", "quit"):
                    break
                if not line.strip():
                    continue  # an empty line is not sent: there is nothing to run
                status = show(client.run(line), sys.stdout.buffer, sys.stderr.buffer)
    except LocalProtocolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except p.Misparse as exc:
        print(f"error: the {args.framing} framing misparsed the reply: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except TimeoutError:
        print(f"error: no reply from {args.host}:{args.port} within {args.timeout:g} s", file=sys.stderr)
        return EXIT_FAILED
    except (OSError, ProtocolError) as exc:
        reason = failure_reason(exc)
        print(f"error: connection to {args.host}:{args.port} failed: {reason}", file=sys.stderr)
        return EXIT_FAILED
    return status
