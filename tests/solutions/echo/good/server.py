"""Echo server, as a student could write it: each line back upper-cased, a thread per client.

    python3 server.py PORT
"""

import socket
import sys
import threading

MAX_LINE = 64 * 1024  # a longer line is refused: one client must not take all the memory
IDLE = 5.0  # seconds a client may stay silent before we close its connection


def serve(conn: socket.socket) -> None:
    with conn:
        conn.settimeout(IDLE)
        buffer = b""
        try:
            while True:
                while b"\n" not in buffer:  # a recv() returns what has arrived: maybe half a line
                    if len(buffer) > MAX_LINE:
                        conn.sendall(b"ERROR line-too-long: no newline within 65536 bytes\n")
                        return
                    data = conn.recv(4096)
                    if not data:
                        return  # the client closed
                    buffer += data
                line, buffer = buffer.split(b"\n", 1)  # keep what follows: maybe the next line
                conn.sendall(line.upper() + b"\n")  # sendall: send() may send only part
        except (socket.timeout, ConnectionError):
            return  # silent too long, or vanished: this client only


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
