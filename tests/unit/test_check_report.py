"""The check report (table, JSON, JUnit XML) and the SOLUTION argument, without Docker."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

import pytest

from socklab.checks import LABS, lab_checks
from socklab.checks.model import ClientCheck, ClientOutcome, ServerCheck, failed_clearly, printed
from socklab.host.check import CheckError, Report, Result, resolve_solution


def report() -> Report:
    return Report("echo", "labs/echo/starter", [
        Result("server-basic", "server", "the happy path", True, seconds=1.0),
        Result("client-partial-recv", "client", "one recv() is not one message", False,
               why="expected b'HELLO\\n', got b'H'", timeline="t 0.0 #1 ... echo line \"H\"", log="oops"),
    ], seconds=2.0)


def test_table_shows_each_check_and_why_a_failure_failed():
    table = report().table()
    assert "server-basic" in table and "pass" in table
    assert "client-partial-recv" in table and "FAIL" in table and "got b'H'" in table
    assert "oops" in table and "echo line" in table
    assert "1/2 checks passed" in table


def test_json_and_junit(tmp_path):
    r = report()
    r.write(tmp_path)
    data = json.loads((tmp_path / "check.json").read_text())
    assert (data["passed"], data["total"]) == (1, 2)
    assert data["checks"][1]["why"].startswith("expected")
    suite = ET.parse(tmp_path / "check.xml").getroot()
    assert suite.tag == "testsuite" and suite.get("tests") == "2" and suite.get("failures") == "1"
    failures = suite.findall("testcase/failure")
    assert len(failures) == 1 and "got b'H'" in failures[0].get("message")


def test_a_report_without_results_did_not_pass():
    assert not Report("echo", "x").passed


def test_solution_folder_must_hold_both_programs(tmp_path):
    with pytest.raises(CheckError, match="no such folder"):
        resolve_solution("echo", str(tmp_path / "missing"))
    (tmp_path / "server.py").write_text("")
    with pytest.raises(CheckError, match="client.py missing"):
        resolve_solution("echo", str(tmp_path))
    (tmp_path / "client.py").write_text("")
    assert resolve_solution("echo", str(tmp_path)) == tmp_path
    assert resolve_solution("echo", "reference") is None


@pytest.mark.parametrize("lab", LABS)
def test_every_lab_has_named_checks_on_both_sides(lab):
    try:
        module = lab_checks(lab)
    except ImportError:
        pytest.fail(f"socklab.checks.{lab} is missing")
    names = [c.name for c in module.CHECKS]
    assert len(names) == len(set(names)), "check names are unique"
    assert any(isinstance(c, ServerCheck) for c in module.CHECKS)
    assert any(isinstance(c, ClientCheck) for c in module.CHECKS)
    for check in module.CHECKS:
        assert check.name.startswith(check.side + "-") and check.pitfall
        if isinstance(check, ClientCheck) and check.peer:
            assert check.peer in module.PEERS


def test_judges():
    ok = printed([b"HELLO"])
    assert ok(ClientOutcome(0, b"HELLO\n", b"")).passed
    assert "exit status 3" in ok(ClientOutcome(3, b"HELLO\n", b"boom")).why
    assert "time limit" in ok(ClientOutcome(None, b"", b"")).why
    clear = failed_clearly("it broke", "use a timeout", also=b"busy", first=b"HELLO\n")
    assert clear(ClientOutcome(1, b"HELLO\n", b"error: busy")).passed
    assert not clear(ClientOutcome(0, b"HELLO\n", b"")).passed
    assert not clear(ClientOutcome(1, b"", b"error: busy")).passed  # did nothing right first
    assert not clear(ClientOutcome(1, b"HELLO\n", b"")).passed  # said nothing
    assert "use a timeout" in clear(ClientOutcome(None, b"HELLO\n", b"")).why
