"""Many clients at once from one process: connect them all, each sends a line, collect the replies.

argv: host port clients deadline_s. All sockets stay open to the end, so the
server holds every connection at the same time. Phase 1 connects (non-
blocking, until all are connected or half the deadline has passed); phase 2
sends one line on each connected socket and waits for the replies until the
deadline. Prints {"clients", "connected", "answered", "connect_s",
"latency_us": [send -> reply, per answered client], "elapsed_s"}.
"""

import errno
import json
import resource
import selectors
import socket
import sys
import time

LINE = b"hello from one of many\n"


def main(host: str, port: int, clients: int, deadline_s: float) -> dict:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < clients + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, clients + 64), hard))
    address = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)[0][4]
    started = time.monotonic()
    deadline = started + deadline_s
    selector = selectors.DefaultSelector()
    socks = []
    pending = set()
    try:
        for _ in range(clients):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            socks.append(s)
            err = s.connect_ex(address)
            if err not in (0, errno.EINPROGRESS):
                raise OSError(err, f"connect: {errno.errorcode.get(err, err)}")
            selector.register(s, selectors.EVENT_WRITE)
            pending.add(s)
        connected = []
        while pending and time.monotonic() < started + deadline_s / 2:
            for key, _ in selector.select(0.2):
                s = key.fileobj
                pending.discard(s)
                selector.unregister(s)
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    connected.append(s)
        connect_s = time.monotonic() - started
        for s in pending:
            selector.unregister(s)
        sent_at, latencies, buffers = {}, [], {}
        for s in connected:
            s.send(LINE)  # 23 bytes into an empty send buffer: taken whole
            sent_at[s] = time.perf_counter_ns()
            buffers[s] = b""
            selector.register(s, selectors.EVENT_READ)
        waiting = len(connected)
        while waiting and time.monotonic() < deadline:
            for key, _ in selector.select(0.2):
                s = key.fileobj
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                buffers[s] += data
                if not data or b"\n" in buffers[s]:
                    if data:
                        latencies.append((time.perf_counter_ns() - sent_at[s]) / 1000)
                    selector.unregister(s)
                    waiting -= 1
        return {"clients": clients, "connected": len(connected), "answered": len(latencies),
                "connect_s": connect_s, "latency_us": latencies, "elapsed_s": time.monotonic() - started}
    finally:
        for s in socks:
            s.close()
        selector.close()


if __name__ == "__main__":
    host, port, clients, deadline = sys.argv[1:5]
    print(json.dumps(main(host, int(port), int(clients), float(deadline))))
