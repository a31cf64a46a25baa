"""The server's sockets through a lab: ``ss`` sampled, each change kept.

The inspector shares the server's network namespace, so ``ss`` there lists
exactly the server's sockets: the listening one (with its backlog in Recv-Q),
each connection's state (SYN-RECV, ESTAB, FIN-WAIT, TIME-WAIT...). Sampling
every few tens of milliseconds and keeping only the moments something
changed gives a short history a student can read beside the capture:

    +0.000 s   LISTEN     0      64     0.0.0.0:7007        0.0.0.0:*
    +1.204 s   LISTEN     1      64     0.0.0.0:7007        0.0.0.0:*      <- one connection waits for accept()
               ESTAB      0      0      10.99.0.10:7007     10.99.0.20:41236
"""

from __future__ import annotations

import subprocess
import threading
import time
from typing import Callable

SAMPLE_SECONDS = 0.05
MAX_CHANGES = 200  # a lab with many clients would otherwise print pages


#: Docker's embedded DNS resolver listens inside every container's namespace
#: on this address: its sockets are Docker's, not the server's.
DOCKER_DNS = "127.0.0.11:"


def ss_snapshot() -> tuple[str, ...]:
    """The namespace's TCP and UDP sockets, one normalised line each, sorted."""
    result = subprocess.run(["ss", "-H", "-t", "-u", "-a", "-n"], capture_output=True, text=True, timeout=5)
    lines = (" ".join(line.split()) for line in result.stdout.splitlines() if line.strip())
    return tuple(sorted(line for line in lines if DOCKER_DNS not in line))


def _columns(line: str) -> str:
    netid, state, recv_q, send_q, local, peer = (line.split() + [""] * 6)[:6]
    return f"{netid:<4} {state:<10} {recv_q:>6} {send_q:>6}  {local:<22} {peer}"


class SocketWatcher:
    """Samples ``snapshot()`` in a thread from start() to stop(); keeps the changes."""

    def __init__(self, snapshot: Callable[[], tuple[str, ...]] = ss_snapshot, interval: float = SAMPLE_SECONDS,
                 max_changes: int = MAX_CHANGES) -> None:
        self._snapshot = snapshot
        self.interval = interval
        self.max_changes = max_changes
        self.changes: list[tuple[float, tuple[str, ...]]] = []
        self.truncated = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = 0.0

    def start(self) -> SocketWatcher:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.sample()  # the state at the very end: TIME-WAIT after the close

    def sample(self) -> None:
        try:
            lines = self._snapshot()
        except (OSError, subprocess.SubprocessError):
            return  # a missed sample is not worth stopping the capture for
        if self.changes and self.changes[-1][1] == lines:
            return
        if len(self.changes) >= self.max_changes:
            self.truncated = True
            return
        self.changes.append((time.monotonic() - self._started, lines))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def report(self) -> str:
        out = ["socket states of the server (ss, each change):",
               f"  {'time':>9}   {'':<4} {'state':<10} {'recv-q':>6} {'send-q':>6}  {'local':<22} peer"]
        for when, lines in self.changes:
            stamp = f"+{when:.3f} s"
            for i, line in enumerate(lines or ("(no sockets)",)):
                out.append(f"  {stamp if i == 0 else '':>9}   {_columns(line) if lines else line}")
        if self.truncated:
            out.append(f"  ... stopped recording after {self.max_changes} changes")
        return "\n".join(out)
