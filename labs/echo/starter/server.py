"""Your echo server: each line back upper-cased, many clients at once.

    python3 server.py PORT

Fill in the places marked TODO(socket); `make check-echo SOLUTION=labs/echo/starter`
(or a copy of this folder) tells you which pitfall each check found.
The rules (labs/echo/README.md, "Your own server and client"):
- answer each line (bytes up to b"\\n") with the same line upper-cased, then b"\\n";
- serve many clients at once;
- close a client that sent nothing for 5 seconds;
- refuse a line longer than 64 KiB (send b"ERROR line-too-long: ...\\n" and close).
"""

import socket
import sys
import threading

MAX_LINE = 64 * 1024
IDLE = 5.0


class Todo(Exception):
    """A part left for you to write."""


def serve(conn: socket.socket) -> None:
    """Answer one client's lines until it leaves, goes silent, or misbehaves."""
    with conn:
        # TODO(socket): a timeout, so that a silent client cannot keep this thread for ever
        buffer = b""
        try:
            while True:
                # TODO(socket): read with conn.recv() until buffer holds a b"\n" (a recv() returns
                # whatever has arrived: half a line, or two lines); b"" means the client left;
                # refuse a line that grows past MAX_LINE.
                raise Todo("serve(): read a whole line with recv()")
                line, buffer = buffer.split(b"\n", 1)  # keep what follows: it may be the next line
                # TODO(socket): send the reply, all of it (send() may send only part)
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
