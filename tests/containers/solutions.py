"""The solutions the checks are tested with (tests/solutions/<lab>/).

    good/           a solution as a careful student writes it: passes every check
    mistakes.toml   known-bad solutions: good/ with one mistake each, and the
                    checks each must fail (exactly those)

A mistake is a replacement in one file of good/, so that each known-bad
solution shows its mistake as a small diff instead of a second copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"


def labs() -> list[str]:
    return sorted(p.parent.parent.name for p in SOLUTIONS.glob("*/good/server.py"))


def mistakes(lab: str) -> dict[str, dict]:
    path = SOLUTIONS / lab / "mistakes.toml"
    return tomllib.loads(path.read_text()) if path.exists() else {}


def build(lab: str, name: str, into: Path) -> Path:
    """good/ of ``lab`` with mistake ``name`` made, in a new folder under ``into``."""
    mistake = mistakes(lab)[name]
    folder = into / name
    shutil.copytree(SOLUTIONS / lab / "good", folder)
    target = folder / mistake["file"]
    text = target.read_text()
    old = mistake["old"].strip("\n")
    if text.count(old) != 1:
        raise AssertionError(f"{lab}/{name}: the text to replace must occur once in good/{mistake['file']}, "
                             f"found {text.count(old)} times")
    target.write_text(text.replace(old, mistake["new"].strip("\n")))
    return folder
