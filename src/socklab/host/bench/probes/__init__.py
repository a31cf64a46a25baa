"""Programs the bench runs inside the client container (``python3 -c``, stdlib and socklab only).

Each prints one JSON object on its last line: raw samples, so that the
statistics are computed once, on the host (socklab.host.bench.report).
They are files of this package so that they can be read, linted and
imported by tests; they are not part of the images (host/ is left out).
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent


def source(name: str) -> str:
    """The text of probe ``name`` (e.g. ``"echo_rtt"``), to pass to ``python3 -c``."""
    return (HERE / f"{name}.py").read_text()
