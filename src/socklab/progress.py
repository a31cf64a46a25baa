"""Progress of a long transfer: a bar on a terminal, a few short lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

MIB = 1 << 20


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


class Progress:
    """Call ``advance(n)`` per chunk and ``done()`` at the end.

    On a terminal the bar is redrawn at most ten times a second; in a log or a
    pipe a line is written at each quarter, and only for transfers large
    enough (``quiet_below``) that a reader would wonder whether it is stuck.
    """

    def __init__(self, label: str, total: int, stream: TextIO | None = sys.stderr, quiet_below: int = 4 * MIB) -> None:
        self.label = label
        self.total = total
        self.stream = stream
        self.tty = stream is not None and stream.isatty()
        self.enabled = stream is not None and total >= quiet_below
        self.done_bytes = 0
        self.started = time.monotonic()
        self._next_draw = 0.0
        self._next_quarter = 1

    def advance(self, n: int) -> None:
        self.done_bytes += n
        if not self.enabled or not self.total:
            return
        if self.tty:
            now = time.monotonic()
            if now >= self._next_draw:
                self._next_draw = now + 0.1
                self._draw()
        elif self.done_bytes * 4 >= self._next_quarter * self.total and self._next_quarter < 4:
            pct = self._next_quarter * 25
            self.stream.write(f"{self.label}: {pct}% ({human_size(self.done_bytes)} of {human_size(self.total)})\n")
            self.stream.flush()
            self._next_quarter += 1

    def _draw(self) -> None:
        frac = self.done_bytes / self.total
        width = 30
        bar = "#" * int(frac * width)
        rate = self.done_bytes / max(time.monotonic() - self.started, 1e-9) / 1e6
        self.stream.write(f"\r{self.label} [{bar:<{width}}] {frac:4.0%} {rate:7.1f} MB/s")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled and self.tty:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()
