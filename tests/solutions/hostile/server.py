"""A hostile solution (for the grading test): forks without end; never serves.

Bounded all the same, as every loop here is: far more forks than the
container's pids limit (64) allows, so that limit is what stops it.
"""

import os
import time

for _ in range(100_000):
    try:
        if os.fork() == 0:
            time.sleep(600)
            os._exit(0)
    except OSError:  # EAGAIN: the pids limit
        time.sleep(0.01)
time.sleep(600)
