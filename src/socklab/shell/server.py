"""The shell server: runs each command line a client sends, replies in its framing.

One port for all three framings: a client names its framing in its first line
(``framing ack``), so one lab -- and one capture filter -- shows them side by
side. A client that names none (``nc``) gets the server's ``--framing``.
Each connection is served by its own thread (LabTCPServer); a command's time
limit and output cap bound how long and how much one client can take.
"""

from __future__ import annotations

import argparse
import logging

from socklab import DEFAULT_PORTS
from socklab.connection import Connection
from socklab.framing import RemoteProtocolError
from socklab.samples import parse_size
from socklab.server import LabHandler, LabTCPServer, logs_as, serve_forever
from socklab.shell import protocol as p
from socklab.shell.runner import Limits, check_identity, run_command

log = logging.getLogger("socklab")


def _identity(data: bytes) -> bytes:
    return data


class ShellHandler(LabHandler):
    server: ShellServer

    def serve(self) -> None:
        self.framing = self.server.framing
        self.conn = Connection(self.request, p.LineDecoder(), _identity, chunk_size=64 * 1024)
        try:
            line = self.conn.receive()
            announced = p.parse_hello(line)
            if announced:
                self.framing = announced
                log.info("%s chose the %s framing", self.peer, announced)
                line = self.conn.receive()
            while True:
                self.run_and_reply(line)
                line = self.conn.receive()
        except RemoteProtocolError as exc:
            # The stream cannot be trusted any more: say why, then close.
            self._send_quietly(p.refusal(str(exc)))
            raise

    def run_and_reply(self, line: p.Line) -> None:
        try:
            command = line.data.decode("utf-8")
        except UnicodeDecodeError as exc:
            result = p.refusal(f"the command is not valid UTF-8 (byte {exc.start})")
        else:
            result = p.refusal("empty command") if not command.strip() else run_command(command, self.server.limits)
        log.info("%s ran %r: %s", self.peer, line.data.decode("utf-8", "replace"), _describe(result))
        self.reply(result)

    def reply(self, result: p.Result) -> None:
        if self.framing == "length":
            self.conn.send(p.encode_result(result))
            return
        blob = p.text_blob(result)
        if self.framing == "naive":
            # One write, so length and output arrive merged every time (see protocol).
            self.conn.send(p.encode_text_length(blob), blob)
            return
        self.conn.send(p.encode_text_length(blob))
        ack = self.conn.receive()
        if ack.data != p.ACK.rstrip(b"\n"):
            raise RemoteProtocolError(f"expected {p.ACK!r} after the length, got {ack.data[:40]!r}")
        self.conn.send(blob)

    def _send_quietly(self, result: p.Result) -> None:
        try:
            if self.framing == "length":
                self.conn.send(p.encode_result(result))
            else:
                blob = p.text_blob(result)
                self.conn.send(p.encode_text_length(blob), blob)
        except OSError:
            pass


def _describe(result: p.Result) -> str:
    if result.refused:
        return result.stderr.decode(errors="replace").strip()
    text = f"status {result.status}, {len(result.stdout)}+{len(result.stderr)} bytes out+err, {result.elapsed_ms} ms"
    if result.timed_out:
        text += ", killed at the time limit"
    if result.truncated:
        text += ", output truncated"
    return text


class ShellServer(LabTCPServer):
    def __init__(self, address: tuple[str, int], limits: Limits, framing: str = p.DEFAULT_FRAMING,
                 idle_timeout: float = 300.0) -> None:
        self.limits = limits
        self.framing = framing
        super().__init__(address, ShellHandler, idle_timeout)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORTS["shell"], help="TCP port (default: %(default)s)")
    parser.add_argument("--framing", default=p.DEFAULT_FRAMING, choices=p.FRAMINGS,
                        help="framing for clients that do not name one in their first line (default: %(default)s)")
    parser.add_argument("--time-limit", type=float, default=10.0,
                        help="kill a command (its whole process group) after this many seconds (default: %(default)s)")
    parser.add_argument("--max-output", type=parse_size, default="1MiB",
                        help="cap on a command's stdout+stderr, e.g. 64KiB (default: %(default)s)")
    parser.add_argument("--run-as", default="nobody",
                        help="user that runs the commands when the server runs as root (default: %(default)s)")
    parser.add_argument("--workdir", default="/tmp", help="folder the commands start in (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="close a connection that sends nothing for this many seconds (default: %(default)s)")


@logs_as("server")
def main(args: argparse.Namespace) -> int:
    limits = Limits(args.time_limit, args.max_output, args.run_as, args.workdir)
    try:
        check_identity(limits)
    except (OSError, KeyError, ValueError) as exc:
        # Fail at start, not on every command: usually a container without
        # the SETUID/SETGID capabilities, or no such user.
        reason = getattr(exc, "strerror", None) or exc
        log.error("cannot run commands as %r in %s: %s (as root, the server needs the SETUID, SETGID and "
                  "KILL capabilities to run commands as another user and stop them)", args.run_as, args.workdir, reason)
        return 1
    except Exception as exc:  # subprocess.CalledProcessError: `true` failed, oddly
        log.error("cannot run commands: %s", exc)
        return 1
    with ShellServer((args.host, args.port), limits, args.framing, args.timeout) as server:
        serve_forever(server, f"shell server (framing {args.framing} by default, commands limited to "
                              f"{limits.time_limit:g} s and {limits.max_output} bytes)")
    return 0
