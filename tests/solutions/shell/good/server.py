"""Shell server, as a student could write it: each command line run by sh -c, its output sent back.

    python3 server.py PORT

Reply to each command: a 20-byte header, then stdout, then stderr.
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
MAX_LINE = 64 * 1024  # a longer command line is refused: one client must not take all the memory
MAX_OUTPUT = 1024 * 1024  # stdout and stderr together
TIME_LIMIT = 3.0  # seconds a command may run
IDLE = 5.0  # seconds a client may stay silent before we close its connection


def run(command: str) -> tuple[bytes, bytes, int, int]:
    """(stdout, stderr, status, flags) of ``sh -c command``, within the time limit and the cap."""
    try:
        proc = subprocess.Popen(command, shell=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)  # its own process group
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
            os.killpg(proc.pid, signal.SIGKILL)  # the whole group: sh and whatever it started
        except ProcessLookupError:
            pass
        status = proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    return bytes(output[proc.stdout]), bytes(output[proc.stderr]), status, flags


def reply(conn: socket.socket, stdout: bytes, stderr: bytes, status: int, flags: int, started: float) -> None:
    elapsed = int((time.monotonic() - started) * 1000)
    conn.sendall(HEADER.pack(len(stdout), len(stderr), status, flags, elapsed) + stdout + stderr)  # sendall: all of it


def refuse(conn: socket.socket, why: str) -> None:
    reply(conn, b"", f"refused: {why}\n".encode(), 0, REFUSED, time.monotonic())


def serve(conn: socket.socket) -> None:
    with conn:
        conn.settimeout(IDLE)
        buffer, first = b"", True
        try:
            while True:
                while b"\n" not in buffer:  # a recv() returns what has arrived: maybe half a line
                    if len(buffer) > MAX_LINE:
                        refuse(conn, "command line over 64 KiB")
                        return
                    data = conn.recv(65536)
                    if not data:
                        return  # the client closed
                    buffer += data
                line, buffer = buffer.split(b"\n", 1)  # keep what follows: maybe the next command
                line = line.rstrip(b"\r")
                if first and line.startswith(b"framing "):
                    first = False
                    if line != b"framing length":
                        refuse(conn, "only the length framing is served here")
                        return
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
            return  # silent too long, or gone: this client only


def main() -> None:
    port = int(sys.argv[1])
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", port))
    listener.listen()
    print(f"listening on port {port}", file=sys.stderr, flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
