"""Echo round trips over one connection: send a short line, wait for its reply, again.

argv: host port count interval_s deadline_s. Paced like ``ping -i interval``
so that both see the same idle gaps between round trips. Prints
{"rtt_us": [...]} (one sample per answered line).
"""

import json
import socket
import sys
import time

from socklab.echo import protocol as p
from socklab.framing import NEED_DATA


def main(host: str, port: int, count: int, interval: float, deadline_s: float) -> dict:
    deadline = time.monotonic() + deadline_s
    rtts = []
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        decoder = p.LineDecoder(p.MAX_REPLY)
        line = p.encode_line(b"socklab bench")
        for _ in range(count):
            if time.monotonic() > deadline:
                break
            started = time.perf_counter_ns()
            sock.sendall(line)
            while decoder.next_event() is NEED_DATA:
                data = sock.recv(4096)
                if not data:
                    raise ConnectionError("the echo server closed the connection")
                decoder.feed(data)
            rtts.append((time.perf_counter_ns() - started) / 1000)
            time.sleep(interval)
    return {"rtt_us": rtts}


if __name__ == "__main__":
    host, port, count, interval, deadline = sys.argv[1:6]
    print(json.dumps(main(host, int(port), int(count), float(interval), float(deadline))))
