"""``make bench``: socklab's ftp against references measured in the same run.

One pair of containers on their own network, both from the inspector image
(it has socklab and iperf3); files on tmpfs, so the disk is not measured.

    iperf3        memory to memory: what the network can carry
    socklab get   a 256 MiB file, SHA-256 on both sides
    naive get     the tutorials' algorithm (socklab.ftp.naive), same file

Prints MB/s and the ratios with their targets, plus the wall time of a warm
``make lab-ftp``; writes bench/out/results.json. Nothing here is a test:
timings vary by machine, and only ratios measured together mean something.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import time
import uuid

import docker

from socklab import LABEL
from socklab.host.images import ensure_images
from socklab.host.paths import REPO_ROOT

FILE_SIZE = "256MiB"
RUNS = 3
TARGETS = {"socklab / iperf3": 0.5, "socklab / naive": 15.0}
LAB_TARGET_SECONDS = 5.0
RATE = re.compile(r"([\d.]+) MB/s")


def _exec(container, command: str) -> str:
    result = container.exec_run(["sh", "-c", command])
    output = result.output.decode(errors="replace")
    if result.exit_code != 0:
        raise RuntimeError(f"`{command}` failed (exit {result.exit_code}):\n{output}")
    return output


def _wait_ready(container, markers: list[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = container.logs().decode(errors="replace")
        if all(m in logs for m in markers):
            return
        time.sleep(0.3)
    raise RuntimeError(f"bench server not ready in {timeout:.0f} s:\n{container.logs().decode(errors='replace')}")


def _rate(output: str) -> float:
    match = RATE.search(output)
    if not match or "OK" not in output:
        raise RuntimeError(f"transfer did not verify:\n{output}")
    return float(match.group(1))


def measure(client: docker.DockerClient) -> dict[str, float]:
    images = ensure_images(client)
    labels = {LABEL: "bench"}
    name = f"socklab-bench-{uuid.uuid4().hex[:8]}"
    network = client.networks.create(name, labels=labels)
    started = []
    try:
        common = dict(network=name, labels=labels, detach=True, mem_limit="1500m", init=True)
        servers = (f"python3 -m socklab server ftp --root /srv/files --generate big.bin={FILE_SIZE} & "
                   "python3 -m socklab server ftp-naive --root /srv/files --port 2122 & "
                   "iperf3 --server --forceflush & wait")
        server = client.containers.run(images.inspector, ["sh", "-c", servers], name=f"{name}-server",
                                       hostname="server", tmpfs={"/srv/files": "size=600m"}, **common)
        started.append(server)
        peer = client.containers.run(images.inspector, ["sleep", "infinity"], name=f"{name}-client",
                                     tmpfs={"/data": "size=600m"}, **common)
        started.append(peer)
        _wait_ready(server, ["ftp server for", "naive ftp listening", "Server listening"])
        host = f"{name}-server"
        print("bench: iperf3, 5 s", flush=True)
        iperf = json.loads(_exec(peer, f"iperf3 --client {host} --time 5 --json"))
        results = {"iperf3 MB/s": iperf["end"]["sum_received"]["bits_per_second"] / 8 / 1e6}
        rates = []
        for run in range(RUNS):
            print(f"bench: socklab get {FILE_SIZE}, run {run + 1} of {RUNS}", flush=True)
            rates.append(_rate(_exec(peer, f"rm -f /data/big.bin; python3 -m socklab client ftp --host {host} "
                                           "--dir /data get big.bin 2>/dev/null")))
        results["socklab MB/s"] = statistics.median(rates)
        print(f"bench: naive get {FILE_SIZE} (the tutorials' algorithm; slow)", flush=True)
        results["naive MB/s"] = _rate(_exec(peer, f"rm -f /data/big.bin; python3 -m socklab client ftp-naive "
                                                  f"--host {host} --dir /data big.bin"))
    finally:
        for container in started:
            container.remove(force=True)
        network.remove()
    results["socklab / iperf3"] = results["socklab MB/s"] / results["iperf3 MB/s"]
    results["socklab / naive"] = results["socklab MB/s"] / results["naive MB/s"]
    return results


def warm_lab_seconds() -> float:
    subprocess.run(["make", "--no-print-directory", "lab-ftp"], cwd=REPO_ROOT, check=True, capture_output=True)  # warm up
    started = time.monotonic()
    subprocess.run(["make", "--no-print-directory", "lab-ftp"], cwd=REPO_ROOT, check=True, capture_output=True)
    return time.monotonic() - started


def main() -> int:
    client = docker.from_env()
    results = measure(client)
    print("bench: a warm `make lab-ftp`", flush=True)
    results["warm make lab-ftp s"] = warm_lab_seconds()
    rows = [(k, f"{v:.1f}", "") for k, v in results.items() if k.endswith("MB/s")]
    for key, target in TARGETS.items():
        verdict = "met" if results[key] >= target else "MISSED"
        rows.append((key, f"{results[key]:.2f}", f"target >= {target:g}: {verdict}"))
    lab = results["warm make lab-ftp s"]
    rows.append(("warm make lab-ftp s", f"{lab:.1f}",
                 f"target < {LAB_TARGET_SECONDS:g}: {'met' if lab < LAB_TARGET_SECONDS else 'MISSED'}"))
    width = max(len(r[0]) for r in rows)
    print()
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>9}  {note}")
    out = REPO_ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nbench: wrote {out / 'results.json'}")
    return 0
