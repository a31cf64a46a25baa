"""`make lab-<name>` itself, as a user runs it: exit status, outputs, teardown.

Every lab runs once; lab-ftp runs with each Compose tool this machine has (v2
plugin and v1), since the Makefile promises both, and once interrupted.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path
from xml.etree import ElementTree

import pytest

from socklab import LABEL
from socklab.inspector.pcap import SYN, read_pcap

pytestmark = [pytest.mark.container, pytest.mark.lab]

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "labs" / "ftp" / "out"
LABS = sorted(p.parent.name for p in (ROOT / "labs").glob("*/lab.toml"))


def _works(command: list[str]) -> bool:
    try:
        return subprocess.run([*command, "version"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


COMPOSE_TOOLS = [c for c in ("docker compose", "docker-compose") if _works(c.split())]


def assert_nothing_left(docker_client, lab: str = "ftp") -> None:
    containers = docker_client.containers.list(all=True, filters={"label": f"{LABEL}={lab}"})
    networks = docker_client.networks.list(filters={"label": f"{LABEL}={lab}"})
    assert not containers and not networks, f"left behind: {containers} {networks}"


# "IP 10.99.0.20.41236 > 10.99.0.10.7007: tcp 12" (tcpdump -q): addresses, ports, payload length
TCPDUMP_LINE = re.compile(r" IP (\d+\.\d+\.\d+\.\d+)\.(\d+) > (\d+\.\d+\.\d+\.\d+)\.(\d+): (tcp|UDP, length) (\d+)")


def tcpdump_reads(docker_client, images, out: Path) -> list[str]:
    """The lines tcpdump itself prints for out/capture.pcap (-n -q: one per packet)."""
    listing = docker_client.containers.run(images.inspector, ["tcpdump", "-r", "/out/capture.pcap", "-n", "-q"],
                                           volumes={str(out): {"bind": "/out", "mode": "ro"}},
                                           labels={LABEL: "test-labs"}, remove=True, stderr=False)
    return listing.decode().splitlines()


def assert_reader_agrees_with_tcpdump(docker_client, images, out: Path) -> None:
    """socklab's pcap reader and tcpdump list the same packets: endpoints and payload lengths."""
    ours = read_pcap(out / "capture.pcap")
    theirs = tcpdump_reads(docker_client, images, out)
    assert len(theirs) == len(ours)
    compared = 0
    for line, packet in zip(theirs, ours):
        match = TCPDUMP_LINE.search(line)
        if not match:
            continue  # e.g. an IP fragment after the first: tcpdump shows no ports either
        src, sport, dst, dport, _, length = match.groups()
        assert (src, int(sport), dst, int(dport)) == (packet.src, packet.sport, packet.dst, packet.dport), line
        if packet.more_fragments:  # tcpdump prints the whole datagram's length; the packet holds its start
            assert int(length) > len(packet.payload), line
        else:
            assert int(length) == len(packet.payload), line
        compared += 1
    assert compared >= len(ours) // 2, "tcpdump's lines were not understood"


def make(*args: str, **kwargs) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.Popen(["make", "--no-print-directory", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs)


def test_some_compose_tool_is_found():
    assert COMPOSE_TOOLS, "neither `docker compose` nor `docker-compose` works: the labs cannot run"


@pytest.mark.parametrize("compose", COMPOSE_TOOLS)
def test_make_lab_ftp_verifies_every_transfer_and_cleans_up(docker_client, images, compose):
    process = make("lab-ftp", f"COMPOSE={compose}")
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-4000:]

    transcript = (OUT / "transcript.txt").read_text()
    assert transcript.rstrip().endswith("lab ftp: OK")
    assert "get big.bin: 16777216 bytes" in transcript and "put returned.bin: 16777216 bytes" in transcript
    assert transcript.count("sha256 OK") == 2 and "check big.bin: sha256 matches" in transcript
    assert "handshake: SYN" in transcript and "close: FIN" in transcript
    assert_nothing_left(docker_client)

    # The capture is a real pcap: tcpdump itself reads it, packet for packet
    # as our reader does, and it holds the lab's one connection.
    ours = read_pcap(OUT / "capture.pcap")
    assert_reader_agrees_with_tcpdump(docker_client, images, OUT)
    assert sum(1 for p in ours if p.flags & SYN and p.dport == 2121) == 1
    payload = sum(len(p.payload) for p in ours)
    assert payload > 2 * 16 << 20  # the file went both ways, every byte of it captured


@pytest.mark.parametrize("lab", [name for name in LABS if name != "ftp"])  # ftp: above, in more detail
def test_every_lab_runs_end_to_end_and_cleans_up(docker_client, images, lab):
    process = make(f"lab-{lab}")
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-4000:]
    out = ROOT / "labs" / lab / "out"
    transcript = (out / "transcript.txt").read_text()
    assert transcript.rstrip().endswith(f"lab {lab}: OK"), transcript[-3000:]
    assert "== server log" in transcript and "== inspector: what crossed the network" in transcript
    assert read_pcap(out / "capture.pcap")
    assert_reader_agrees_with_tcpdump(docker_client, images, out)
    assert "timeline:" in transcript
    if lab != "udp":  # datagrams have no handshake to mark
        assert "handshake 1/3" in transcript
    assert "socket states of the server" in transcript
    svg = ElementTree.parse(out / "capture.svg").getroot()  # well-formed, a picture
    assert svg.tag.endswith("svg") and len(list(svg.iter())) > 10
    assert_nothing_left(docker_client, lab)


def run_lab(lab: str, *variables: str) -> str:
    process = make(f"lab-{lab}", *variables)
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-4000:]
    return (ROOT / "labs" / lab / "out" / "transcript.txt").read_text()


def test_udp_loss_with_a_fixed_seed_is_the_same_on_every_run(docker_client, images):
    first = run_lab("udp", "LOSS=0.2", "SEED=7")
    second = run_lab("udp", "LOSS=0.2", "SEED=7")
    summary = re.compile(r"^\d+ sent, \d+ received, \d+ lost .*$|^lost: seq .*$", re.M)
    assert summary.findall(first) and summary.findall(first) == summary.findall(second)
    recorded = (ROOT / "labs" / "udp" / "out" / "impairment.txt").read_text()
    assert "--seed 7" in recorded and "loss=0.2" in recorded  # the seed, beside the capture
    assert_nothing_left(docker_client, "udp")


def test_the_slicer_impairment_shows_in_the_capture(docker_client, images):
    transcript = run_lab("shell", "IMPAIR=slicer")
    assert "sliced into" in transcript  # the proxy's own account
    out = ROOT / "labs" / "shell" / "out"
    listing = docker_client.containers.run(images.inspector, ["tcpdump", "-r", "/out/capture.pcap", "-n",
                                                              "src port 2222 and greater 60"],
                                           volumes={str(out): {"bind": "/out", "mode": "ro"}},
                                           labels={LABEL: "test-labs"}, remove=True, stderr=False).decode()
    data = [int(n) for n in re.findall(r"length (\d+)", listing) if int(n)]  # ACKs carry none
    assert len(data) > 10 and max(data) <= 32, data  # every reply segment the client got: 32 bytes at most
    assert_nothing_left(docker_client, "shell")


def test_under_merging_naive_framing_still_fails_and_length_framing_passes(docker_client, images):
    # The shell lab's steps: length and ack must succeed, the naive steps must
    # observe their misparse (--expect misparse) -- now with writes merged.
    transcript = run_lab("shell", "IMPAIR=merger")
    assert "merged" in transcript  # the proxy really merged writes
    assert transcript.count("as expected, the reply was misparsed") == 2
    assert "uid=65534(nobody)" in transcript  # the length and ack steps ran their command
    assert_nothing_left(docker_client, "shell")


def test_a_lab_folder_can_hold_its_own_scenario(docker_client, images):
    transcript = run_lab("udp", "IMPAIR=flaky")  # labs/udp/flaky.impair
    assert "impairment flaky:" in transcript and "duplicated" in transcript
    duplicates = re.search(r"^\d+ sent, \d+ received, \d+ lost .*, (\d+) duplicates", transcript, re.M)
    assert duplicates and int(duplicates.group(1)) > 0  # the scenario's dup=0.2 reached the pinger
    assert_nothing_left(docker_client, "udp")


@pytest.mark.parametrize("lab", LABS)
def test_trace_shows_the_servers_socket_calls_beside_python_s(docker_client, images, lab):
    transcript = run_lab(lab, "TRACE=1")
    calls = transcript.split("== server system calls", 1)[1].split("== inspector", 1)[0]
    for expected in ("] socket(", "<- socket.socket()", "] bind(", "<- sock.bind(address)"):
        assert expected in calls, calls[:3000]
    # a TCP server accepts; the UDP one only receives
    assert ("] recvfrom(" if lab == "udp" else "] accept4(") in calls, calls[:3000]
    server_log = transcript.split("== server log", 1)[1].split("== server system calls", 1)[0]
    assert "socket(" not in server_log  # the trace is taken out of the server's own log
    assert_nothing_left(docker_client, lab)


def test_ctrl_c_tears_the_lab_down(docker_client, images):
    process = make("lab-ftp", start_new_session=True)
    seen = []
    deadline = time.monotonic() + 120
    assert process.stdout is not None
    for line in process.stdout:  # bounded: the lab ends by itself within seconds
        seen.append(line)
        if "== client" in line or time.monotonic() > deadline:
            break
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C sends: the whole process group
    rest, _ = process.communicate(timeout=120)
    output = "".join(seen) + rest
    assert process.returncode != 0, output[-3000:]
    assert "tearing down" in output
    assert_nothing_left(docker_client)
