"""Echo round trips over one connection: send a short line, wait for its reply, again.

argv: host port count interval_s deadline_s. Paced like ``ping -i interval``
so that both see the same idle gaps between round trips.

Each round trip is timed two ways, from just before the send:
    stamped  to the reply's arrival in our kernel (SO_TIMESTAMPNS), which is
             how ping times its replies: its "time=" is the kernel's receive
             stamp minus the send time, not when ping itself woke up
    wall     to the reply's last byte in Python, our own wake-up included
Prints {"stamped_us": [...], "wall_us": [...]}, one sample per answered line.
The socket blocks, without Python's timeout (which polls before every recv
and send: two system calls instead of one); the kernel's SO_RCVTIMEO bounds
each wait instead.
"""

import json
import socket
import struct
import sys
import time

from socklab.echo import protocol as p
from socklab.framing import NEED_DATA

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux's value; the socket module lacks the name
WAIT_S = 5


def main(host: str, port: int, count: int, interval: float, deadline_s: float) -> dict:
    deadline = time.monotonic() + deadline_s
    stamped, wall = [], []
    with socket.create_connection((host, port), timeout=WAIT_S) as sock:
        sock.settimeout(None)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", WAIT_S, 0))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        decoder = p.LineDecoder(p.MAX_REPLY)
        line = p.encode_line(b"socklab bench")
        for _ in range(count):
            if time.monotonic() > deadline:
                break
            sent_ns, started = time.time_ns(), time.perf_counter_ns()  # the stamps are wall-clock time
            sock.sendall(line)
            arrived_ns = None
            while decoder.next_event() is NEED_DATA:
                data, ancillary, _, _ = sock.recvmsg(4096, 64)  # BlockingIOError after WAIT_S
                if not data:
                    raise ConnectionError("the echo server closed the connection")
                for level, kind, value in ancillary:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                        seconds, nanoseconds = struct.unpack("qq", value[:16])
                        arrived_ns = seconds * 1_000_000_000 + nanoseconds  # the last piece's arrival
                decoder.feed(data)
            wall.append((time.perf_counter_ns() - started) / 1000)
            if arrived_ns is not None:
                stamped.append((arrived_ns - sent_ns) / 1000)
            time.sleep(interval)
    return {"stamped_us": stamped, "wall_us": wall}


if __name__ == "__main__":
    host, port, count, interval, deadline = sys.argv[1:6]
    print(json.dumps(main(host, int(port), int(count), float(interval), float(deadline))))
