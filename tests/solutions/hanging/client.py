"""A solution that hangs (for the grading test): connects, then waits for ever."""

import socket
import sys
import time

sock = socket.create_connection((sys.argv[1], int(sys.argv[2])))
time.sleep(3600)
