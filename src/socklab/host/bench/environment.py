"""The rows about setting the lab up: wall time of a warm and a cold start, image sizes.

A lab uses a fixed subnet and compose project, so only one may run at a time
machine-wide: the lab rows take /tmp/socklab-lab.lock (the lock `flock`
takes in the README) and time only what runs once it is held.

The cold set-up -- a clean clone, no images, to the end of a first ``make
lab-ftp`` -- removes every socklab image on the machine, which would pull
them from under anyone else using them. So it runs only when asked (``make
bench COLD=1``) and its result is kept in bench/out/cold.json; an ordinary
run reports the last measured figure, marked as such.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import docker

from socklab.host.bench.report import Row, Target
from socklab.host.images import IMAGE_LABEL, Images
from socklab.host.paths import REPO_ROOT

LAB_LOCK = "/tmp/socklab-lab.lock"
LOCK_WAIT = 900.0
WARM_TARGET, COLD_TARGET, IMAGE_TARGET_MB = 5.0, 180.0, 150.0
COLD_FILE = "cold.json"


def _say(message: str) -> None:
    print(f"bench: {message}", flush=True)


@contextmanager
def lab_lock(wait: float = LOCK_WAIT) -> Iterator[None]:
    """Hold the machine-wide lab lock (flock(2), as flock(1) takes it), waiting at most ``wait`` s."""
    with open(LAB_LOCK, "a") as f:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{LAB_LOCK} still held by another lab after {wait:g} s") from None
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _make_lab(cwd: Path) -> float:
    started = time.monotonic()
    result = subprocess.run(["make", "--no-print-directory", "lab-ftp"], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"make lab-ftp failed in {cwd}:\n{(result.stdout + result.stderr)[-3000:]}")
    return time.monotonic() - started


def warm_lab() -> Row:
    """A `make lab-ftp` with images and venv already there (run once before, to be sure)."""
    _say("lab: waiting for the lab lock, then a warm `make lab-ftp` (after one to warm up)")
    with lab_lock():
        _make_lab(REPO_ROOT)
        seconds = _make_lab(REPO_ROOT)
    return Row("lab", "warm make lab-ftp", seconds, "s", "images and venv present",
               target=Target("<", WARM_TARGET, on="figure"))


def cold_lab(out: Path, client: docker.DockerClient) -> Row:
    """Clone the repository, remove every socklab image, time `make lab-ftp` in the clone. Opt-in."""
    with lab_lock(), tempfile.TemporaryDirectory(prefix="socklab-cold-") as tmp:
        clone = Path(tmp) / "socklab"
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
        subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(clone)], check=True)
        removed = 0
        for image in client.images.list(filters={"label": IMAGE_LABEL}):
            client.images.remove(image.id, force=True)
            removed += 1
        _say(f"cold: removed {removed} socklab images; `make lab-ftp` in a fresh clone of {commit} (venv, images, lab)")
        seconds = _make_lab(clone)
    record = {"seconds": seconds, "commit": commit, "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    (out / COLD_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return _cold_row(record, fresh=True)


def _cold_row(record: dict | None, fresh: bool) -> Row:
    target = Target("<", COLD_TARGET, on="figure")
    reference = "clean clone, no images"
    if record is None:
        return Row("lab", "cold set-up (clone to lab done)", None, "s", reference, target=target,
                   note="never measured here: make bench COLD=1")
    note = "" if fresh else f"last measured {record['measured_at']} at {record['commit']}, not this run"
    return Row("lab", "cold set-up (clone to lab done)", record["seconds"], "s", reference, target=target, note=note)


def last_cold(out: Path) -> Row:
    try:
        record = json.loads((out / COLD_FILE).read_text())
    except (OSError, ValueError):
        record = None
    return _cold_row(record, fresh=False)


def image_sizes(client: docker.DockerClient, images: Images) -> list[Row]:
    def mb(tag: str) -> float:
        return client.images.get(tag).attrs["Size"] / 1e6

    return [
        Row("images", "socklab/lab (server, client)", mb(images.lab), "MB", images.lab,
            target=Target("<", IMAGE_TARGET_MB, on="figure")),
        Row("images", "socklab/inspector", mb(images.inspector), "MB", images.inspector),
    ]


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"
