"""make bench's pure parts: percentiles, verdicts, the table, the JSON and the SVG chart."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from socklab.host.bench.network import ping_rtts
from socklab.host.bench.report import Row, Target, chart, percentile, table, to_json

SVG = "{http://www.w3.org/2000/svg}"


def test_percentile_is_nearest_rank():
    samples = list(range(1, 101))  # 1..100
    assert percentile(samples, 50) == 50
    assert percentile(samples, 99) == 99
    assert percentile(samples, 100) == 100
    assert percentile(samples, 0) == 1
    assert percentile([7.0], 99) == 7.0
    assert percentile([3, 1, 2], 50) == 2  # unsorted input


def test_percentile_refuses_nonsense():
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1, 2], 101)


def test_verdicts_follow_the_target_and_what_it_applies_to():
    assert Row("ftp", "get", 800, "MB/s", ratio=0.42, target=Target(">=", 0.5)).verdict == "MISSED"
    assert Row("ftp", "get", 800, "MB/s", ratio=0.5, target=Target(">=", 0.5)).verdict == "met"
    assert Row("lab", "warm", 4.9, "s", target=Target("<", 5, on="figure")).verdict == "met"
    assert Row("lab", "warm", 5.0, "s", target=Target("<", 5, on="figure")).verdict == "MISSED"
    assert Row("lab", "cold", None, "s", target=Target("<", 180, on="figure")).verdict == "not measured"
    assert Row("images", "inspector", 215, "MB").verdict == ""
    with pytest.raises(ValueError):
        Target("~", 1)


def test_progress_is_one_when_the_target_is_just_met():
    assert Row("x", "a", 1, "", ratio=0.25, target=Target(">=", 0.5)).progress == pytest.approx(0.5)
    assert Row("x", "b", 10, "s", target=Target("<", 5, on="figure")).progress == pytest.approx(0.5)
    assert Row("x", "c", 1, "").progress is None


ROWS = [
    Row("ftp", "get throughput", 760.4, "MB/s", "iperf3 1800 MB/s", 0.422, Target(">=", 0.5), "runs 700, 760, 800"),
    Row("echo", "round trip p50", 0.117, "ms", "ping p50 0.046 ms", 2.54, Target("<=", 3)),
    Row("concurrency", "blocking: answered within 20 s", 1, "clients", "66 connected"),
    Row("lab", "cold set-up", None, "s", "clean clone", target=Target("<", 180, on="figure"), note="never measured"),
]


def test_table_has_one_line_per_row_aligned_with_verdicts():
    lines = table(ROWS).splitlines()
    assert len(lines) == 2 + len(ROWS)  # header, rule, rows
    assert set(lines[1]) == {"-"}
    ftp, echo, blocking, cold = lines[2:]
    assert "760 MB/s" in ftp and "0.42" in ftp and "ratio >= 0.5" in ftp and ftp.split()[-5] == "MISSED"
    assert echo.rstrip().endswith("met") and "2.54" in echo
    assert "1 clients" in blocking and "MISSED" not in blocking and "met" not in blocking
    assert "not measured" in cold and "(never measured)" in cold
    # the figure column is right-aligned: every figure ends at the same column
    ends = {line.index(figure) + len(figure) for line, figure in zip(lines[2:], ("760 MB/s", "0.12 ms", "1 clients"))}
    assert len(ends) == 1


def test_json_round_trips_with_verdicts_and_context():
    data = json.loads(json.dumps(to_json(ROWS, {"started": "2026-01-01T00:00:00+00:00", "load_before": "1 1 1"})))
    assert data["started"].startswith("2026") and data["load_before"] == "1 1 1"
    assert [r["verdict"] for r in data["rows"]] == ["MISSED", "met", "", "not measured"]
    assert data["rows"][0]["target"] == "ratio >= 0.5" and data["rows"][0]["ratio"] == 0.422
    assert data["rows"][3]["figure"] is None


def test_chart_is_well_formed_svg_with_a_bar_per_target_row():
    svg = chart([*ROWS, Row("x<&>", "y \"quoted\"", 2, "s", target=Target("<", 5, on="figure"))], title="a <b> & c")
    root = ET.fromstring(svg)  # raises if not well-formed
    assert root.tag == f"{SVG}svg"
    bars = [r for r in root.iter(f"{SVG}rect") if "bar" in r.get("class", "").split()]
    assert [b.get("class") for b in bars] == ["bar MISSED", "bar met", "bar met"]  # rows without a figure or target: no bar
    assert all(float(b.get("width")) > 0 for b in bars)
    assert len([line for line in root.iter(f"{SVG}line") if line.get("class") == "target"]) == 1
    texts = "".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "a <b> & c" in texts and "x<&>" in texts


def test_chart_without_rows_is_still_an_svg():
    assert ET.fromstring(chart([])).tag == f"{SVG}svg"


def test_ping_output_gives_one_sample_per_reply():
    output = """PING server (172.18.0.2) 56(84) bytes of data.
64 bytes from 172.18.0.2: icmp_seq=1 ttl=64 time=0.046 ms
64 bytes from 172.18.0.2: icmp_seq=2 ttl=64 time=0.101 ms

--- server ping statistics ---
2 packets transmitted, 2 received, 0% packet loss, time 5ms
rtt min/avg/max/mdev = 0.046/0.073/0.101/0.027 ms
"""
    assert ping_rtts(output) == pytest.approx([46.0, 101.0])
