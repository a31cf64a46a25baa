"""``make check-<lab>`` itself: the reference passes every check, the starter fails every
one with a message, and each known-bad solution fails exactly the checks aimed at its mistake.

Each run starts fresh sandboxed containers per check (socklab.host.check);
everything is removed by the checker itself, and by label at the end.
"""

from __future__ import annotations

import json

import pytest

from socklab.checks import lab_checks
from socklab.host.check import Checker, resolve_solution
from socklab.host.paths import LABS_DIR
from solutions import build, labs, mistakes

pytestmark = pytest.mark.container

LABS = labs()
KNOWN_BAD = [(lab, name) for lab in LABS for name in mistakes(lab)]


def run(lab, solution, out, docker_client, images):
    return Checker(lab, solution, out, client=docker_client, images=images, progress=lambda line: None).run()


def failures(report) -> dict[str, str]:
    return {r.name: r.why for r in report.failed}


@pytest.mark.parametrize("lab", LABS)
def test_reference_passes_every_check(lab, tmp_path, docker_client, images):
    report = run(lab, None, tmp_path, docker_client, images)
    assert report.passed, report.table()
    assert len(report.results) == len(lab_checks(lab).CHECKS)
    saved = json.loads((tmp_path / "check.json").read_text())
    assert saved["passed"] == saved["total"] == len(report.results)
    assert "<testsuite" in (tmp_path / "check.xml").read_text()


@pytest.mark.parametrize("lab", LABS)
def test_good_solution_passes_every_check(lab, tmp_path, docker_client, images):
    """A student's solution, written from the contract alone (no socklab import), can pass: the
    checks ask for what the lab README says, not for socklab's own way of doing it."""
    from solutions import SOLUTIONS

    report = run(lab, SOLUTIONS / lab / "good", tmp_path, docker_client, images)
    assert report.passed, report.table()


@pytest.mark.parametrize("lab", LABS)
def test_starter_fails_every_check_with_a_message(lab, tmp_path, docker_client, images):
    report = run(lab, resolve_solution(lab, str(LABS_DIR / lab / "starter")), tmp_path, docker_client, images)
    assert not report.passed
    assert len(report.failed) == len(report.results), report.table()
    for result in report.failed:
        assert result.why, f"{result.name} failed without saying why"
    # The starter says what is left to write, and the table shows it.
    assert "TODO" in report.table()


@pytest.mark.parametrize("lab,mistake", KNOWN_BAD, ids=[f"{lab}-{name}" for lab, name in KNOWN_BAD])
def test_known_bad_solution_fails_exactly_its_check(lab, mistake, tmp_path, docker_client, images):
    solution = build(lab, mistake, tmp_path / "solutions")
    report = run(lab, solution, tmp_path / "out", docker_client, images)
    expected = set(mistakes(lab)[mistake]["fails"])
    assert set(failures(report)) == expected, report.table()
    for name in expected:
        assert failures(report)[name], f"{name} failed without saying why"


def test_grade_a_class(tmp_path, docker_client, images):
    """make grade: a hostile (fork bomb and flood), a failing, a hanging and a passing solution,
    in that order: one CSV row each; the hostile and the hanging ones stopped at their time limit
    without holding up the others or spoiling the last one's run; nothing left behind."""
    import csv
    import shutil

    from socklab.host.grade import grade
    from solutions import SOLUTIONS

    class_dir = tmp_path / "class"
    shutil.copytree(SOLUTIONS / "hostile", class_dir / "ann")
    build("echo", "one-recv-client", tmp_path / "built").rename(class_dir / "bob")
    shutil.copytree(SOLUTIONS / "hanging", class_dir / "eve")
    shutil.copytree(SOLUTIONS / "echo" / "good", class_dir / "zoe")
    out = tmp_path / "grades"

    assert grade("echo", class_dir, out, time_limit=40) == 0

    rows = {row["student"]: row for row in csv.DictReader((out / "grades.csv").open())}
    assert set(rows) == {"ann", "bob", "eve", "zoe"}
    total = str(len(lab_checks("echo").CHECKS))
    assert (rows["zoe"]["passed"], rows["zoe"]["total"], rows["zoe"]["score"]) == (total, total, "100.0")
    assert rows["zoe"]["status"] == "ok"
    assert rows["bob"]["failed_checks"] == "client-partial-recv" and rows["bob"]["status"] == "ok"
    assert rows["eve"]["status"] in ("time limit", "killed at the time limit")
    assert float(rows["eve"]["score"]) < 50
    assert rows["ann"]["passed"] == "0"
    assert (out / "zoe" / "check.xml").exists()
    leftovers = docker_client.containers.list(all=True, filters={"label": "org.socklab.check"})
    assert not [c.name for c in leftovers if "grade-" in c.labels.get("org.socklab.check", "")]


def test_make_check_target(docker_client, images):
    """What a student types: make check-echo (the starter by default): a table, a failing exit, results on disk."""
    import subprocess

    from socklab.host.paths import REPO_ROOT

    out = LABS_DIR / "echo" / "out"
    run = subprocess.run(["make", "-s", "check-echo"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode != 0, run.stdout + run.stderr  # the checker's 1, which make turns into 2
    assert "SOLUTION=labs/echo/starter" in run.stdout
    assert f"0/{len(lab_checks('echo').CHECKS)} checks passed" in run.stdout
    assert "TODO(socket)" in run.stdout
    saved = json.loads((out / "check.json").read_text())
    assert saved["solution"] == "labs/echo/starter" and saved["passed"] == 0
