"""A solution that hangs (for the grading test): accepts clients, never answers, never closes."""

import socket
import sys
import time

listener = socket.create_server(("0.0.0.0", int(sys.argv[1])))
held = []
for _ in range(10_000):  # bounded, but far beyond any check's patience
    conn, _ = listener.accept()
    held.append(conn)
time.sleep(3600)
