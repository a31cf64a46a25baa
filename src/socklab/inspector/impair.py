"""Impairment settings and their seeded decisions: what the proxy does to traffic.

Pure: no sockets, no clock. ``socklab.inspector.proxy`` asks this module what
to do with each write (TCP) or datagram (UDP) and does it.

A spec is ``key=value`` pairs separated by commas::

    delay=50ms,jitter=10ms,rate=1mbit,slice=16:5ms      TCP
    loss=0.2,dup=0.05,reorder=0.1,delay=20ms             UDP

    delay=T        hold each write/datagram T before passing it on (latency)
    jitter=T       plus or minus up to T on each delay, drawn from the seed
    rate=R         bandwidth: 64kbit, 1mbit, 1gbit (bits/s), 100kB, 1MiB (bytes/s)
    slice=N[:T]    TCP: cut every write into N-byte segments, T apart
                   (default 1ms): the receiver's recv() gets partial messages
    merge=T        TCP: hold what arrives for T, then send it as one write:
                   several messages arrive in one recv() (sticky packets)
    frames=T       TCP: the opposite of merge, the network the tutorials
                   assume: each protocol message (as the exercise's decoder
                   cuts the stream) sent as its own write, T after the last
                   (the shell's naive length too, as their server sends it);
                   needs the proxy's --exercise
    reset=N        TCP: pass N bytes, then reset both sides (RST)
    blackhole=N    TCP: pass N bytes, then pass nothing more, and keep the
                   connection open: the peer waits, then times out
    loss=P         UDP: drop this fraction of datagrams (0.2 or 20%)
    dup=P          UDP: send this fraction of datagrams twice
    reorder=P      UDP: hold this fraction back until the next datagram has
                   gone (or REORDER_HOLD has passed)
    dir=D          both (default), to-server or to-client

Sizes take B, kB, KiB, MB, MiB; durations us, ms or s. Named scenarios
(``SCENARIOS``) are specs with a name; a scenario file holds a spec, one or
more settings per line, ``#`` comments allowed.

Every random choice comes from ``random.Random`` seeded with the seed and the
direction: one stream per direction of each TCP connection and UDP client:
the n-th datagram of a client meets the n-th draw of its stream, on every run,
whatever other clients did. Each datagram takes the same four draws whatever
the settings, so ``loss=0.2`` drops the same datagrams with or without ``dup``.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

#: Longest that a reordered datagram waits for the next one to overtake it.
REORDER_HOLD = 1.0
#: Segment gap when ``slice=N`` names none.
DEFAULT_SLICE_GAP = 0.001

DIRECTIONS = ("both", "to-server", "to-client")
TCP_ONLY = ("slice", "merge", "frames", "reset", "blackhole")
UDP_ONLY = ("loss", "dup", "reorder")

SCENARIOS = {
    "slicer": "slice=32:1ms",
    "merger": "merge=50ms",
    "slow": "delay=100ms,jitter=20ms,rate=256kbit",
    "reset": "reset=4KiB",
    "blackhole": "blackhole=100",
    "lossy": "loss=0.2,dup=0.05,reorder=0.1,delay=20ms,jitter=5ms",
}


class ImpairmentError(ValueError):
    """A spec, scenario or setting that cannot be used; the message says why."""


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(us|ms|s)$")
_DURATION_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
_SIZE = re.compile(r"^(\d+)(B|kB|KiB|MB|MiB)?$")
_SIZE_UNITS = {None: 1, "B": 1, "kB": 1000, "KiB": 1024, "MB": 1000**2, "MiB": 1024**2}
_RATE = re.compile(r"^(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit|B|kB|KiB|MB|MiB)(?:/s)?$")
_RATE_UNITS = {"bit": 1 / 8, "kbit": 1e3 / 8, "mbit": 1e6 / 8, "gbit": 1e9 / 8,
               "B": 1, "kB": 1e3, "KiB": 1024, "MB": 1e6, "MiB": 1024**2}


def _duration(key: str, text: str) -> float:
    m = _DURATION.match(text)
    if not m:
        hint = f"{text}ms or {text}s" if re.fullmatch(r"\d+(\.\d+)?", text) else "e.g. 50ms, 1.5s, 200us"
        raise ImpairmentError(f"{key}={text}: a duration with its unit, {hint}")
    return float(m.group(1)) * _DURATION_UNITS[m.group(2)]


def _size(key: str, text: str) -> int:
    m = _SIZE.match(text)
    if not m:
        raise ImpairmentError(f"{key}={text}: a size in bytes, e.g. 100, 4KiB, 1MB")
    return int(m.group(1)) * _SIZE_UNITS[m.group(2)]


def _rate(key: str, text: str) -> float:
    m = _RATE.match(text)
    if not m or float(m.group(1)) <= 0:
        raise ImpairmentError(f"{key}={text}: a rate above 0, e.g. 64kbit, 1mbit (bits/s) or 100kB, 1MiB (bytes/s)")
    return float(m.group(1)) * _RATE_UNITS[m.group(2)]


def _fraction(key: str, text: str) -> float:
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise ImpairmentError(f"{key}={text}: a fraction from 0 to 1, e.g. 0.2 or 20%")
    return value


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:g}ms"


@dataclass(frozen=True)
class Impairment:
    """What to do to the traffic; all zero: pass everything as it comes."""

    delay: float = 0.0  # seconds
    jitter: float = 0.0  # seconds, either way
    rate: float = 0.0  # bytes per second; 0: unlimited
    slice_size: int = 0  # bytes; 0: writes pass whole
    slice_gap: float = DEFAULT_SLICE_GAP
    merge: float = 0.0  # seconds
    frames: float = 0.0  # seconds between messages; 0: writes pass as they come
    reset_after: int | None = None  # bytes
    blackhole_after: int | None = None  # bytes
    loss: float = 0.0
    dup: float = 0.0
    reorder: float = 0.0
    direction: str = "both"
    seed: int = 0
    name: str = field(default="", compare=False)  # the scenario's, if any

    def applies(self, direction: str) -> bool:
        """Whether traffic going ``to-server`` or ``to-client`` is impaired."""
        return self.direction in ("both", direction)

    @property
    def active(self) -> bool:
        return self != Impairment(seed=self.seed, direction=self.direction)

    def check(self, transport: str) -> Impairment:
        """Refuse settings that mean nothing on ``tcp`` or ``udp``; returns self."""
        wrong = UDP_ONLY if transport == "tcp" else TCP_ONLY
        used = [key for key in wrong if key in self._settings()]
        if used:
            other = "UDP" if transport == "tcp" else "TCP"
            raise ImpairmentError(f"{', '.join(used)}: {other} only, and this proxy relays {transport.upper()}")
        return self

    def _settings(self) -> dict[str, str]:
        """The non-default settings, as spec text, in spec order."""
        out: dict[str, str] = {}
        if self.delay:
            out["delay"] = _ms(self.delay)
        if self.jitter:
            out["jitter"] = _ms(self.jitter)
        if self.rate:
            out["rate"] = f"{self.rate * 8 / 1000:g}kbit"
        if self.slice_size:
            out["slice"] = f"{self.slice_size}:{_ms(self.slice_gap)}"
        if self.merge:
            out["merge"] = _ms(self.merge)
        if self.frames:
            out["frames"] = _ms(self.frames)
        if self.reset_after is not None:
            out["reset"] = str(self.reset_after)
        if self.blackhole_after is not None:
            out["blackhole"] = str(self.blackhole_after)
        for key in UDP_ONLY:
            if getattr(self, key):
                out[key] = f"{getattr(self, key):g}"
        if self.direction != "both":
            out["dir"] = self.direction
        return out

    def spec(self) -> str:
        """The settings as a spec that parse() reads back to the same Impairment."""
        return ",".join(f"{k}={v}" for k, v in self._settings().items()) or "none"

    def describe(self) -> str:
        """One line for the transcript: what is done, the spec and the seed to replay it."""
        parts = []
        if self.delay or self.jitter:
            parts.append(f"delay {_ms(self.delay)}" + (f" +/- {_ms(self.jitter)}" if self.jitter else ""))
        if self.rate:
            parts.append(f"at most {self.rate * 8 / 1000:g} kbit/s")
        if self.slice_size:
            parts.append(f"writes cut into {self.slice_size}-byte segments {_ms(self.slice_gap)} apart")
        if self.merge:
            parts.append(f"writes held {_ms(self.merge)} and sent together")
        if self.frames:
            parts.append(f"each message sent alone, {_ms(self.frames)} after the one before")
        if self.reset_after is not None:
            parts.append(f"reset (RST) after {self.reset_after} bytes")
        if self.blackhole_after is not None:
            parts.append(f"silence after {self.blackhole_after} bytes, connection kept open")
        for key, what in (("loss", "lost"), ("dup", "duplicated"), ("reorder", "reordered")):
            if getattr(self, key):
                parts.append(f"{getattr(self, key):.0%} {what}")
        what = "; ".join(parts) or "none: traffic passes unchanged"
        name = f" {self.name}" if self.name else ""
        where = "" if self.direction == "both" else f" ({self.direction} only)"
        return f"impairment{name}: {what}{where} [--impair {self.spec()} --seed {self.seed}]"


_KEYS = ("delay", "jitter", "rate", "slice", "merge", "frames", "reset", "blackhole", "loss", "dup", "reorder", "dir")


def _setting(key: str, value: str) -> dict[str, object]:
    if key in ("delay", "jitter", "merge", "frames"):
        return {key: _duration(key, value)}
    if key == "rate":
        return {"rate": _rate(key, value)}
    if key == "slice":
        size, _, gap = value.partition(":")
        n = _size(key, size)
        if n < 1:
            raise ImpairmentError(f"slice={value}: segments of at least 1 byte")
        return {"slice_size": n, "slice_gap": _duration(key, gap) if gap else DEFAULT_SLICE_GAP}
    if key in ("reset", "blackhole"):
        return {f"{key}_after": _size(key, value)}
    if key in UDP_ONLY:
        return {key: _fraction(key, value)}
    if value not in DIRECTIONS:
        raise ImpairmentError(f"dir={value}: one of {', '.join(DIRECTIONS)}")
    return {"direction": value}


def parse(spec: str, seed: int = 0, base: Impairment | None = None) -> Impairment:
    """An Impairment from ``key=value,...``; the settings override ``base``'s."""
    result = replace(base or Impairment(), seed=seed)
    changes: dict[str, object] = {}
    for item in re.split(r"[,\s]+", spec.strip()):
        if not item or item == "none":
            continue
        key, sep, value = item.partition("=")
        if not sep or not value:
            raise ImpairmentError(f"{item!r}: a setting is key=value, e.g. delay=50ms")
        if key not in _KEYS:
            raise ImpairmentError(f"{key!r} in {item!r}: not a setting (settings: {', '.join(_KEYS)})")
        changes.update(_setting(key, value))
    return replace(result, **changes)


def scenario(name: str, seed: int = 0) -> Impairment:
    """A named scenario (SCENARIOS), or a scenario file: a path to a spec."""
    if name in SCENARIOS:
        return replace(parse(SCENARIOS[name], seed), name=name)
    path = Path(name)
    if "/" in name or path.suffix:
        try:
            text = path.read_text()
        except OSError as exc:
            raise ImpairmentError(f"scenario file {name}: {exc.strerror or exc}") from None
        lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
        try:
            return replace(parse(",".join(line for line in lines if line), seed), name=path.stem)
        except ImpairmentError as exc:
            raise ImpairmentError(f"scenario file {name}: {exc}") from None
    raise ImpairmentError(f"no scenario named {name!r} (scenarios: {', '.join(SCENARIOS)}; or a path to a file)")


# --- decisions: what happens to each write or datagram ---------------------------


@dataclass(frozen=True)
class Fate:
    """What becomes of one datagram."""

    drop: bool
    copies: int  # 1, or 2 when duplicated
    hold: bool  # reordered: waits for the next datagram to go first
    delay: float  # seconds before it (and its copy) go

    def describe(self) -> str:
        if self.drop:
            return "DROPPED"
        words = ["DUPLICATED"] if self.copies > 1 else []
        if self.hold:
            words.append("HELD BACK (reorder)")
        if self.delay:
            words.append(f"delayed {_ms(round(self.delay, 4))}")
        return ", ".join(words) or "passed"


class Decider:
    """The seeded decisions of one stream: one direction of a connection or UDP client."""

    def __init__(self, impairment: Impairment, direction: str) -> None:
        self.impairment = impairment
        self.active = impairment.applies(direction)  # draws are taken anyway: streams stay aligned
        self.random = random.Random(f"{impairment.seed}/{direction}")

    def _delay(self, draw: float) -> float:
        imp = self.impairment
        return max(0.0, imp.delay + (2 * draw - 1) * imp.jitter)

    def delay(self) -> float:
        """Delay of a TCP write (one draw: the jitter)."""
        draw = self.random.random()
        return self._delay(draw) if self.active else 0.0

    def datagram(self) -> Fate:
        """Fate of the next UDP datagram: always four draws, used or not."""
        r_loss, r_dup, r_reorder, r_jitter = (self.random.random() for _ in range(4))
        if not self.active:
            return Fate(False, 1, False, 0.0)
        imp = self.impairment
        return Fate(drop=r_loss < imp.loss, copies=2 if r_dup < imp.dup else 1,
                    hold=r_reorder < imp.reorder, delay=self._delay(r_jitter))


def segments(data: bytes, size: int) -> list[bytes]:
    """``data`` cut into pieces of at most ``size`` bytes (whole when size is 0)."""
    if size <= 0 or len(data) <= size:
        return [data]
    return [data[i:i + size] for i in range(0, len(data), size)]


def transmit_time(nbytes: int, rate: float) -> float:
    """Seconds that ``nbytes`` take at ``rate`` bytes/s (0 when unlimited)."""
    return nbytes / rate if rate else 0.0


def cut_at(limit: int | None, passed: int, data: bytes) -> tuple[bytes, bool]:
    """Of ``data``, what may still pass when ``passed`` bytes already did and at
    most ``limit`` may, and whether the limit is now reached."""
    if limit is None:
        return data, False
    room = max(0, limit - passed)
    return data[:room], len(data) >= room


