"""``make grade LAB=ftp SOLUTIONS=dir/``: a class's solutions through a lab's checks, a CSV of scores.

Every folder of ``dir/`` is one student's solution (server.py and client.py).
Each runs as ``python -m socklab.host check`` in a process of its own, with
containers and a network of its own (its run id), and a time limit:

    --time-limit T   the checker starts no check after T seconds (the rest
                     count as failed, "not run"); at T + GRACE the process is
                     killed and its containers and network removed by label

so that a solution that hangs, forks without end or floods its network costs
at most T + GRACE, and the next solution still runs. Results:

    labs/<lab>/out/grade/<student>/check.json, check.xml   as make check writes them
    labs/<lab>/out/grade/grades.csv                        one row per student
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import docker

from socklab.checks import lab_checks
from socklab.host.check import CheckError, remove_run
from socklab.host.images import ensure_images
from socklab.host.paths import LABS_DIR

DEFAULT_TIME_LIMIT = 300.0  # seconds per solution: a passing one needs about a minute
GRACE = 60.0  # after the time limit, for the check in progress to end and the report to be written
FIELDS = ("student", "score", "passed", "total", "status", "seconds", "failed_checks")


@dataclass
class Row:
    student: str
    passed: int
    total: int
    status: str  # ok, time limit, killed, error: ...
    seconds: float
    failed_checks: list[str]

    @property
    def score(self) -> float:
        return round(100.0 * self.passed / self.total, 1) if self.total else 0.0

    def csv_row(self) -> dict:
        return {"student": self.student, "score": self.score, "passed": self.passed, "total": self.total,
                "status": self.status, "seconds": round(self.seconds), "failed_checks": " ".join(self.failed_checks)}


def solutions_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise CheckError(f"SOLUTIONS={folder}: no such folder (one sub-folder per student)")
    found = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not found:
        raise CheckError(f"SOLUTIONS={folder}: no solution folders in it (one sub-folder per student)")
    return found


def grade_one(lab: str, solution: Path, out: Path, time_limit: float, client: docker.DockerClient) -> Row:
    run_id = f"grade-{uuid.uuid4().hex[:8]}"
    total = len(lab_checks(lab).CHECKS)
    command = [sys.executable, "-m", "socklab.host", "check", lab, "--solution", str(solution), "--out", str(out),
               "--time-limit", str(time_limit), "--run-id", run_id]
    started = time.monotonic()
    status = "ok"
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=time_limit + GRACE, check=False)
        if run.returncode not in (0, 1):
            status = f"error: {(run.stderr.strip().splitlines() or ['exit ' + str(run.returncode)])[-1]}"
    except subprocess.TimeoutExpired:
        status = "killed at the time limit"
    finally:
        remove_run(client, run_id)  # whatever a killed checker could not remove itself
    seconds = time.monotonic() - started
    report = out / "check.json"
    if status != "ok" or not report.exists():
        return Row(solution.name, 0, total, status if status != "ok" else "error: no report", seconds, ["all"])
    results = json.loads(report.read_text())
    failed = [c["name"] for c in results["checks"] if not c["passed"]]
    if any(c["why"].startswith("not run") for c in results["checks"]):
        status = "time limit"
    return Row(solution.name, results["passed"], results["total"], status, seconds, failed)


def grade(lab: str, solutions: Path, out: Path | None = None, time_limit: float | None = None) -> int:
    """Grade every solution in ``solutions``; 0 when grading ran (whatever the scores)."""
    lab_checks(lab)  # an unknown lab fails here, before anything starts
    folders = solutions_in(solutions)
    out = out or LABS_DIR / lab / "out" / "grade"
    limit = time_limit or DEFAULT_TIME_LIMIT
    client = docker.from_env()
    ensure_images(client)  # once, before the clock of the first student starts
    print(f"grade {lab}: {len(folders)} solutions from {solutions}, at most {limit:g} s each, one at a time",
          flush=True)
    rows = []
    for number, folder in enumerate(folders, 1):
        row = grade_one(lab, folder, out / folder.name, limit, client)
        rows.append(row)
        print(f"  [{number}/{len(folders)}] {row.student:<24} {row.passed:>2}/{row.total}  {row.score:5.1f}%  "
              f"{row.status}  ({row.seconds:.0f} s)", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    table = out / "grades.csv"
    with table.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, FIELDS)
        writer.writeheader()
        writer.writerows(row.csv_row() for row in rows)
    print(f"grades: {table}; each student's checks: {out}/<student>/check.json, check.xml")
    return 0
