"""Echo clients no person would be, run inside the client container by the tests.

    python3 echo_peer.py many HOST PORT N     # N connections open at once
    python3 echo_peer.py flood HOST PORT      # sends lines, never reads a reply

many: opens N connections first, then sends "client i" on each, the last one
first, and reads each reply in that order while all N stay open -- a server
that serves one client at a time could answer only the first to connect.
Prints {"connected": N, "replies": [text or null, ...]} (index i: client i).

flood: sends "a\\n" lines and never reads, until a send makes no progress for
2 s (the server has stopped reading: every buffer on the way is full). Prints
{"local": "ip:port", "sent": bytes, "stalled": bool} at once, then keeps the
connection, still not reading, until the server drops it (a send fails) or
60 s pass: {"dropped_after": seconds or null, "error": str or null}.
"""

import json
import socket
import sys
import time


def many(host: str, port: int, n: int) -> dict:
    socks = [socket.create_connection((host, port), timeout=10) for _ in range(n)]
    replies = [None] * n
    try:
        for i in reversed(range(n)):
            socks[i].sendall(f"client {i}\n".encode())
        for i in reversed(range(n)):
            data = b""
            try:
                while not data.endswith(b"\n"):
                    chunk = socks[i].recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                pass  # a timeout: no reply, reported as null
            replies[i] = data.decode() if data.endswith(b"\n") else None
    finally:
        for sock in socks:
            sock.close()
    return {"connected": len(socks), "replies": replies}


def flood(host: str, port: int) -> None:
    sock = socket.create_connection((host, port), timeout=10)
    sock.setblocking(False)
    chunk, sent, limit = b"a\n" * 32768, 0, 256 << 20
    last_progress = time.monotonic()
    while sent < limit and time.monotonic() - last_progress < 2:
        try:
            sent += sock.send(chunk)
            last_progress = time.monotonic()
        except BlockingIOError:
            time.sleep(0.05)
    stalled = sent < limit
    print(json.dumps({"local": "%s:%d" % sock.getsockname()[:2], "sent": sent, "stalled": stalled}), flush=True)
    started, report = time.monotonic(), {"dropped_after": None, "error": None}
    while time.monotonic() - started < 60:
        try:
            sock.send(b"a\n")  # fails once the server has closed (RST: it left our lines unread)
        except BlockingIOError:
            time.sleep(0.1)
        except OSError as exc:
            report = {"dropped_after": round(time.monotonic() - started, 1), "error": type(exc).__name__}
            break
    sock.close()
    print(json.dumps(report), flush=True)


def main() -> int:
    what, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if what == "many":
        print(json.dumps(many(host, port, int(sys.argv[4]))), flush=True)
    elif what == "flood":
        flood(host, port)
    else:
        raise SystemExit(f"echo_peer: unknown command {what!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
