"""A hostile solution (for the grading test): floods the network it is given, TCP and UDP.

Only its check's proxy is reachable (the run's network is internal); the
flood ends after 60 s at most, or when the checker kills it first.
"""

import socket
import sys
import time

host, port = sys.argv[1], int(sys.argv[2])
junk = b"x" * 1400
deadline = time.monotonic() + 60
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
tcp = None
while time.monotonic() < deadline:
    try:
        udp.sendto(junk, (host, port))
        if tcp is None:
            tcp = socket.create_connection((host, port), timeout=1)
        tcp.send(junk * 40)
    except OSError:
        tcp = None
