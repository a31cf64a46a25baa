"""``make bench``: socklab's servers against real references, measured in one run.

Method. One pair of containers on their own labelled network (rig.py):
every server runs in one, every client and probe in the other, so each
figure and its reference cross the same veth pair, with the same CPU and
memory limits. Repeated measurements alternate ours and the reference, so
that load from elsewhere on the machine weighs on both; the ratio of the
two is what means something, not the absolute figures.

    family       ours                                reference
    ftp          get of 256 MiB, SHA-256 both sides  iperf3 (memory to memory);
                 (the server's: at a first get,      the tutorials' algorithm
                 reported apart, then remembered)
    echo         line round trips, one connection:   ping, same count and pacing;
                 the threaded server, the same       socat's echo (C), the floor
                 busy polling                        of a sleeping process
    concurrency  5,000 clients on the selectors      the blocking server
                 echo server, all at once
    http         keep-alive GETs of one small file   http.server's ThreadingHTTPServer
    lab          a warm `make lab-ftp`; a cold       targets only
                 set-up (opt-in: COLD=1)
    images       socklab/lab, socklab/inspector      target only

Output: a table (each row: figure, reference, ratio, target, met/MISSED),
bench/out/results.json and bench/out/results.svg. Nothing here is a test:
timings vary by machine and by what else runs on it.

    python -m socklab.host.bench                    all rows
    python -m socklab.host.bench --only echo http   some families
    python -m socklab.host.bench --cold             also the cold set-up (removes socklab's images!)
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import datetime, timezone

import docker

from socklab.host.bench import environment, network
from socklab.host.bench.report import Row, chart, table, to_json
from socklab.host.bench.rig import Rig
from socklab.host.images import ensure_images
from socklab.host.paths import REPO_ROOT

OUT = REPO_ROOT / "bench" / "out"
NETWORK_FAMILIES = {"ftp": network.ftp, "echo": network.echo, "concurrency": network.concurrency,
                    "http": network.http}
FAMILIES = [*NETWORK_FAMILIES, "lab", "images"]


def measure(families: list[str], cold: bool) -> list[Row]:
    client = docker.from_env()
    images = ensure_images(client)
    rows: list[Row] = []
    wanted = [f for f in NETWORK_FAMILIES if f in families]
    if wanted:
        with Rig(client, images.inspector) as rig:
            for family in wanted:
                rows += NETWORK_FAMILIES[family](rig)
    if "lab" in families:
        rows.append(environment.warm_lab())
        if cold:
            rows.append(environment.cold_lab(OUT, client))
            images = ensure_images(client)  # the clone built HEAD's; this tree may differ
        else:
            rows.append(environment.last_cold(OUT))
    if "images" in families:
        rows += environment.image_sizes(client, images)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m socklab.host.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=FAMILIES, default=FAMILIES, metavar="FAMILY",
                        help=f"measure only these ({', '.join(FAMILIES)})")
    parser.add_argument("--cold", action="store_true",
                        help="also time a cold set-up: REMOVES every socklab image on this machine first")
    args = parser.parse_args([] if argv is None else argv)
    OUT.mkdir(parents=True, exist_ok=True)
    context = {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cpus": os.cpu_count(),
               "load_before": environment.load()}
    rows = measure(args.only, args.cold)
    context["load_after"] = environment.load()
    print(f"\nload average (1, 5, 15 min): {context['load_before']} before, {context['load_after']} after;"
          f" {context['cpus']} CPUs\n")
    print(table(rows))
    (OUT / "results.json").write_text(json.dumps(to_json(rows, context), indent=2) + "\n")
    (OUT / "results.svg").write_text(chart(rows, f"socklab bench, {context['started']}"))
    print(f"\nbench: wrote {OUT / 'results.json'} and {OUT / 'results.svg'}")
    return 0
