"""HTTP/1.1 keep-alive load: several connections, one thread, each sending its next GET when answered.

argv: host port path connections max_requests seconds. Bounded by both
count and time. A response counts when its status is 200 and its body has
the announced Content-Length; anything else counts as an error and closes that
connection. Prints {"requests", "errors", "seconds"}.
"""

import json
import selectors
import socket
import sys
import time


def main(host: str, port: int, path: str, connections: int, max_requests: int, seconds: float) -> dict:
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    selector = selectors.DefaultSelector()
    state = {}
    for _ in range(connections):
        s = socket.create_connection((host, port), timeout=5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        state[s] = bytearray()
        selector.register(s, selectors.EVENT_READ)
    done = errors = sent = 0
    started = time.monotonic()
    deadline = started + seconds
    for s in state:
        s.send(request)
        sent += 1
    try:
        while state and done + errors < max_requests and time.monotonic() < deadline:
            for key, _ in selector.select(0.5):
                s = key.fileobj
                buf = state[s]
                try:
                    data = s.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                buf += data
                end = buf.find(b"\r\n\r\n")
                ok = None
                if not data:
                    ok = False
                elif end >= 0:
                    head = bytes(buf[:end]).decode("latin-1").split("\r\n")
                    length = next((int(h.split(":", 1)[1]) for h in head[1:] if h.lower().startswith("content-length:")), -1)
                    if length < 0:
                        ok = False
                    elif len(buf) >= end + 4 + length:
                        ok = head[0].split(" ")[1] == "200" and len(buf) == end + 4 + length
                if ok is None:
                    continue
                buf.clear()
                if ok:
                    done += 1
                    if sent < max_requests:
                        s.send(request)  # a few dozen bytes into an empty send buffer
                        sent += 1
                        continue
                else:
                    errors += 1
                selector.unregister(s)
                s.close()
                del state[s]
    finally:
        elapsed = time.monotonic() - started
        for s in state:
            s.close()
        selector.close()
    return {"requests": done, "errors": errors, "seconds": elapsed}


if __name__ == "__main__":
    host, port, path, connections, max_requests, seconds = sys.argv[1:7]
    print(json.dumps(main(host, int(port), path, int(connections), int(max_requests), float(seconds))))
