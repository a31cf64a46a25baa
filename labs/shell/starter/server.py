"""Your shell server: each command line run by sh -c, its output sent back.

    python3 server.py PORT

Fill in the places marked TODO(socket); `make check-shell SOLUTION=labs/shell/starter`
(or a copy of this folder) tells you which pitfall each check found.
The rules (labs/shell/README.md, "Your own server and client"):
- serve many clients at once; close a client that sent nothing for 5 seconds;
- a first line b"framing length" may come: accept it (it is the default);
- every other line (bytes up to b"\\n") is a command: run it (run() below, given)
  and reply with HEADER, then stdout, then stderr;
- a line over 64 KiB, not UTF-8, or empty is refused: refuse() (over 64 KiB, then close).
"""

import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

HEADER = struct.Struct("!IIiII")  # stdout bytes, stderr bytes, exit status, flags, elapsed ms
TRUNCATED, TIMED_OUT, REFUSED = 1, 2, 4
MAX_LINE = 64 * 1024
MAX_OUTPUT = 1024 * 1024  # stdout and stderr together
TIME_LIMIT = 3.0
IDLE = 5.0


class Todo(Exception):
    """A part left for you to write."""


def run(command: str) -> tuple[bytes, bytes, int, int]:
    """(stdout, stderr, status, flags) of ``sh -c command``, within the time limit and the cap.

    Given, not socket work: read it. The command gets its own process group, so
    that a kill at a limit stops everything it started (`sleep 30 | cat` too).
    """
    try:
        proc = subprocess.Popen(command, shell=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the command
        return b"", f"refused: {exc}\n".encode(), 0, REFUSED
    output = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    deadline, total, flags = time.monotonic() + TIME_LIMIT, 0, 0
    with selectors.DefaultSelector() as selector:
        for pipe in output:
            selector.register(pipe, selectors.EVENT_READ)
        while selector.get_map() and not flags:
            left = deadline - time.monotonic()
            if left <= 0:
                flags = TIMED_OUT
                break
            for key, _ in selector.select(left):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                room = MAX_OUTPUT - total
                output[key.fileobj] += chunk[:room]
                total += min(len(chunk), room)
                if len(chunk) > room:
                    flags = TRUNCATED
    if not flags:
        try:
            status = proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            flags = TIMED_OUT
    if flags:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        status = proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    return bytes(output[proc.stdout]), bytes(output[proc.stderr]), status, flags


def reply(conn: socket.socket, stdout: bytes, stderr: bytes, status: int, flags: int, started: float) -> None:
    elapsed = int((time.monotonic() - started) * 1000)
    header = HEADER.pack(len(stdout), len(stderr), status, flags, elapsed)
    # TODO(socket): send header + stdout + stderr, all of it (send() may send only part)
    raise Todo("reply(): send the reply")


def refuse(conn: socket.socket, why: str) -> None:
    reply(conn, b"", f"refused: {why}\n".encode(), 0, REFUSED, time.monotonic())


def serve(conn: socket.socket) -> None:
    """Run one client's commands until it leaves, goes silent, or misbehaves."""
    with conn:
        # TODO(socket): a timeout, so that a silent client cannot keep this thread for ever
        buffer, first = b"", True
        try:
            while True:
                # TODO(socket): read with conn.recv() until buffer holds a b"\n" (a recv() returns
                # whatever has arrived: half a line, or several); b"" means the client left;
                # a buffer growing past MAX_LINE: refuse() and return.
                raise Todo("serve(): read a whole line with recv()")
                line, buffer = buffer.split(b"\n", 1)  # keep what follows: it may be the next command
                line = line.rstrip(b"\r")
                if first and line == b"framing length":
                    first = False
                    continue
                first = False
                started = time.monotonic()
                try:
                    command = line.decode("utf-8")
                except UnicodeDecodeError:
                    refuse(conn, "the command is not valid UTF-8")
                    continue
                if not command.strip():
                    refuse(conn, "empty command")
                    continue
                reply(conn, *run(command), started)
        except (socket.timeout, ConnectionError):
            return


def main() -> int:
    port = int(sys.argv[1])
    try:
        # TODO(socket): create a TCP socket, allow address reuse, bind it to ("0.0.0.0", port), listen()
        raise Todo("main(): create the listening socket")
        while True:
            # TODO(socket): accept() a client and serve it -- without making the others wait
            raise Todo("main(): accept clients")
    except Todo as todo:
        print(f"starter: TODO(socket) not written yet in server.py: {todo}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
