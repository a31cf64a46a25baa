"""Sample files with reproducible content, so a lab can state their digest.

The bytes come from SHAKE-256 of the name and a block number: the same name
and size give the same file on every machine and Python version, generated
block by block in constant memory.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

BLOCK = 1 << 20
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "KIB": 1 << 10, "M": 1 << 20, "MIB": 1 << 20, "G": 1 << 30, "GIB": 1 << 30}


def parse_size(text: str) -> int:
    """``"16MiB"`` -> 16777216. Accepts B, K/KiB, M/MiB, G/GiB."""
    m = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", text)
    if not m or m.group(2).upper() not in _UNITS:
        raise ValueError(f"not a size: {text!r} (examples: 0, 512, 64KiB, 16MiB, 1GiB)")
    return int(m.group(1)) * _UNITS[m.group(2).upper()]


def blocks(name: str, size: int):
    """The content of sample ``name`` of ``size`` bytes, one block at a time."""
    for i, start in enumerate(range(0, size, BLOCK)):
        seed = f"socklab sample {name} block {i}".encode()
        yield hashlib.shake_256(seed).digest(min(BLOCK, size - start))


def write_sample(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        for block in blocks(path.name, size):
            f.write(block)


def sample_digest(name: str, size: int, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    for block in blocks(name, size):
        h.update(block)
    return h.hexdigest()
