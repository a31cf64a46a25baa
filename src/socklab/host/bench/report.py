"""The bench's results: rows with their targets, a table, JSON and an SVG chart.

Pure code (no Docker, no sockets), so it is unit-tested. A row is one figure
beside its reference; its target applies either to the ratio of the two or to
the figure itself, and says "met" or "MISSED".
"""

from __future__ import annotations

import math
import operator
from dataclasses import asdict, dataclass
from typing import Sequence
from xml.sax.saxutils import escape

_OPS = {">=": operator.ge, "<=": operator.le, "<": operator.lt, ">": operator.gt}


def percentile(samples: Sequence[float], p: float) -> float:
    """The nearest-rank percentile: the smallest sample with at least p% of the samples at or below it."""
    if not samples:
        raise ValueError("no samples")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} is not between 0 and 100")
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Target:
    """``ratio >= 0.5``, ``figure < 5``...: ``on`` names what is compared."""

    op: str
    value: float
    on: str = "ratio"  # or "figure"

    def __post_init__(self) -> None:
        if self.op not in _OPS or self.on not in ("ratio", "figure"):
            raise ValueError(f"bad target {self.on} {self.op} {self.value}")

    def met(self, value: float) -> bool:
        return _OPS[self.op](value, self.value)

    def __str__(self) -> str:
        return f"{self.on} {self.op} {self.value:g}"


@dataclass(frozen=True)
class Row:
    """One line of the table.

    ``figure`` is ours, ``reference`` says what it is compared with (or how it
    was measured), ``ratio`` is figure / reference where that means something.
    ``figure`` None: not measured this time (``note`` says why).
    """

    family: str
    name: str
    figure: float | None
    unit: str
    reference: str = ""
    ratio: float | None = None
    target: Target | None = None
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        value = self.ratio if self.target.on == "ratio" else self.figure
        if value is None:
            return "not measured"
        return "met" if self.target.met(value) else "MISSED"

    @property
    def progress(self) -> float | None:
        """How far the row is towards its target: 1.0 or more when met (for the chart)."""
        value = None if self.target is None else (self.ratio if self.target.on == "ratio" else self.figure)
        if value is None or value <= 0 or self.target.value <= 0:
            return None
        if self.target.op in (">=", ">"):
            return value / self.target.value
        return self.target.value / value

    def as_dict(self) -> dict:
        d = asdict(self)
        d["target"] = str(self.target) if self.target else None
        d["verdict"] = self.verdict
        return d


def _number(x: float | None) -> str:
    if x is None:
        return "-"
    if isinstance(x, int):
        return str(x)
    if x == 0 or abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 0.01:
        return f"{x:.2f}"
    return f"{x:.3g}"


def table(rows: Sequence[Row]) -> str:
    """Fixed-width text: family, row, figure and unit, reference, ratio, target and verdict."""
    header = ("", "row", "figure", "reference", "ratio", "target", "")
    lines = [header]
    for r in rows:
        figure = f"{_number(r.figure)} {r.unit}".strip() if r.figure is not None else "-"
        target = str(r.target) if r.target else ""
        verdict = r.verdict + (f"  ({r.note})" if r.note else "")
        lines.append((r.family, r.name, figure, r.reference, _number(r.ratio) if r.ratio is not None else "",
                      target, verdict))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    out = []
    for line in lines:
        cells = [line[i].rjust(widths[i]) if i in (2, 4) else line[i].ljust(widths[i]) for i in range(len(widths))]
        out.append("  ".join(cells + [line[-1]]).rstrip())
    out.insert(1, "-" * max(len(o) for o in out))
    return "\n".join(out)


def to_json(rows: Sequence[Row], context: dict) -> dict:
    """What results.json holds: the context of the run (time, load...) and every row."""
    return {**context, "rows": [r.as_dict() for r in rows]}


def chart(rows: Sequence[Row], title: str = "socklab bench") -> str:
    """An SVG bar chart: each row with a target, as a fraction of it (the line at 1 is the target)."""
    shown = [r for r in rows if r.progress is not None]
    bar_h, gap, left, width, top = 18, 8, 330, 420, 40
    scale_max = max([2.0, *(min(r.progress, 4.0) for r in shown)])
    x = lambda v: left + width * min(v, scale_max) / scale_max  # noqa: E731
    height = top + len(shown) * (bar_h + gap) + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 160}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<text x="10" y="22" font-size="15" font-weight="bold">{escape(title)}</text>',
        f'<text x="{left}" y="{top - 6}" fill="#555">fraction of the target (1 = target just met; '
        f'"&lt;" targets inverted)</text>',
    ]
    for i, r in enumerate(shown):
        y = top + i * (bar_h + gap)
        colour = "#2e7d32" if r.verdict == "met" else "#c62828"
        label = f"{r.family}: {r.name}"
        value = f"{_number(r.figure)} {r.unit}" + (f", ratio {_number(r.ratio)}" if r.ratio is not None else "")
        parts += [
            f'<text x="{left - 8}" y="{y + 13}" text-anchor="end">{escape(label)}</text>',
            f'<rect class="bar {r.verdict}" x="{left}" y="{y}" width="{x(r.progress) - left:.1f}" '
            f'height="{bar_h}" fill="{colour}"/>',
            f'<text x="{x(r.progress) + 6:.1f}" y="{y + 13}">{escape(value)} ({escape(r.verdict)})</text>',
        ]
    bottom = top + len(shown) * (bar_h + gap)
    parts += [
        f'<line class="target" x1="{x(1):.1f}" y1="{top - 2}" x2="{x(1):.1f}" y2="{bottom}" '
        f'stroke="#000" stroke-dasharray="4 3"/>',
        f'<text x="{x(1):.1f}" y="{bottom + 16}" text-anchor="middle">target</text>',
        "</svg>",
    ]
    return "\n".join(parts) + "\n"
