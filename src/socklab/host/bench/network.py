"""The rows measured between the two containers: ftp, echo, concurrency, http.

Each function takes the running Rig and returns its rows. Where a figure is
compared with a reference, both are measured in the same run, alternately
when repeated, so that load from elsewhere weighs on both alike.
"""

from __future__ import annotations

import json
import re
import statistics

from socklab.host.bench import rig as r
from socklab.host.bench.report import Row, Target, percentile

RATE = re.compile(r"([\d.]+) MB/s")
FTP_RUNS = 4
PING_COUNT, PING_INTERVAL = 1000, 0.005  # the echo loops are paced the same way
ECHO_ROUNDS = 4
CLIENTS = 5000


def _say(message: str) -> None:
    print(f"bench: {message}", flush=True)


def _rate(output: str) -> float:
    match = RATE.search(output)
    if not match or "OK" not in output:
        raise RuntimeError(f"transfer did not verify:\n{output}")
    return float(match.group(1))


def _iperf3(rig: r.Rig) -> float:
    result = json.loads(rig.run(["iperf3", "--client", rig.server_host, "--port", str(r.IPERF), "--time", "3", "--json"]))
    return result["end"]["sum_received"]["bits_per_second"] / 8 / 1e6


def _get(rig: r.Rig) -> float:
    return _rate(rig.sh(f"rm -f /data/{r.FTP_FILE}; python3 -m socklab client ftp --host {rig.server_host} "
                        f"--dir /data get {r.FTP_FILE} 2>/dev/null"))


def ftp(rig: r.Rig) -> list[Row]:
    """ftp get of a 256 MiB file (SHA-256 on both sides) against iperf3 and the naive algorithm.

    A first get warms up: the server hashes the file while sending it, once
    (ftp/digests.py). The later ones send it with sendfile and the digest it
    remembered, as a real server would; the client hashes every byte of
    every get. Then iperf3 (3 s) and a get alternate, FTP_RUNS times; the
    ratio is of the medians.
    """
    _say(f"ftp: a first get of {r.FTP_SIZE}, which the server hashes as it sends")
    first = _get(rig)
    iperf, ours = [], []
    for run in range(FTP_RUNS):
        _say(f"ftp: iperf3 3 s, then socklab get {r.FTP_SIZE} (round {run + 1} of {FTP_RUNS})")
        iperf.append(_iperf3(rig))
        ours.append(_get(rig))
    _say(f"ftp: naive get {r.FTP_SIZE} (the tutorials' algorithm; slow)")
    naive = _rate(rig.sh(f"rm -f /data/{r.FTP_FILE}; python3 -m socklab client ftp-naive --host {rig.server_host} "
                         f"--port {r.NAIVE} --dir /data {r.FTP_FILE}"))
    rig.sh(f"rm -f /data/{r.FTP_FILE}")
    iperf_mb, ours_mb = statistics.median(iperf), statistics.median(ours)
    runs = f"runs {', '.join(f'{x:.0f}' for x in ours)}; the first get, hashed by the server too: {first:.0f}"
    return [
        Row("ftp", "get throughput", ours_mb, "MB/s", f"iperf3 {iperf_mb:.0f} MB/s", ours_mb / iperf_mb,
            Target(">=", 0.5), runs),
        Row("ftp", "get throughput", ours_mb, "MB/s", f"naive {naive:.1f} MB/s", ours_mb / naive, Target(">=", 15)),
    ]


def ping_rtts(output: str) -> list[float]:
    """The round-trip times (µs) in ping's output, one per reply line."""
    return [float(ms) * 1000 for ms in re.findall(r"time=([\d.]+) ms", output)]


def echo(rig: r.Rig) -> list[Row]:
    """Round trips of a short line over one connection against ping.

    ping and the echo probes alternate, ECHO_ROUNDS times, so that load from
    elsewhere weighs on both. Each echo is timed as ping times its replies,
    to the reply's arrival in the kernel (see probes/echo_rtt.py); one row
    adds the probe's own wake-up. The servers:
        socklab's threaded echo server, as the labs run it;
        the same with --busy-poll: its thread spins instead of sleeping
            between lines, so that no wake-up is paid on its side;
        socat's echo, in C: the floor of an echo whose process sleeps. ping
            is answered by the far kernel itself; an echo wakes a process.
    """
    count = PING_COUNT // ECHO_ROUNDS
    servers = {"ours": r.ECHO_THREADED, "busy": r.ECHO_BUSY, "socat": r.ECHO_SOCAT}
    ping: list[float] = []
    samples: dict[str, list[float]] = {"ours": [], "ours_wall": [], "busy": [], "socat": []}
    for run in range(ECHO_ROUNDS):
        _say(f"echo: ping, then socklab's echo, busy polling and socat's ({count} round trips each, every "
             f"{PING_INTERVAL * 1000:g} ms; round {run + 1} of {ECHO_ROUNDS})")
        ping += ping_rtts(rig.run(["ping", "-n", "-c", str(count), "-i", str(PING_INTERVAL), rig.server_host]))
        for who, port in servers.items():
            result = rig.probe("echo_rtt", rig.server_host, port, count, PING_INTERVAL, 60)
            samples[who] += result["stamped_us"]
            if who == "ours":
                samples["ours_wall"] += result["wall_us"]
    if not ping or not all(samples.values()):
        counts = ", ".join(f"{k} {len(v)}" for k, v in samples.items())
        raise RuntimeError(f"no round trips measured (ping {len(ping)}, {counts})")

    def row(name: str, key: str, p: int, target: Target | None = None, note: str = "") -> Row:
        mine, theirs = percentile(samples[key], p), percentile(ping, p)
        return Row("echo", name, mine / 1000, "ms", f"ping p{p} {theirs / 1000:.3f} ms", mine / theirs, target, note)

    return [
        row("round trip p50", "ours", 50, Target("<=", 3), "threaded, as in the labs; to the reply's arrival, as ping times"),
        row("round trip p99", "ours", 99),
        row("round trip p50, in Python", "ours_wall", 50, note="to the reply in Python: our wake-up too"),
        row("round trip p50, busy polling", "busy", 50, Target("<=", 3), f"--busy-poll {r.BUSY_POLL_MS}: a core kept busy"),
        row("round trip p99, busy polling", "busy", 99),
        row("C echo (socat) p50", "socat", 50, note="the floor of an echo whose process sleeps"),
    ]


def concurrency(rig: r.Rig) -> list[Row]:
    """5,000 clients at once against the selectors echo server, then the blocking one."""
    rows = []
    for mode, port, deadline in (("selectors", r.ECHO_SELECTORS, 60), ("blocking", r.ECHO_BLOCKING, 20)):
        _say(f"concurrency: {CLIENTS} clients at once, {mode} echo server (at most {deadline} s)")
        result = rig.probe("many_clients", rig.server_host, port, CLIENTS, deadline)
        answered, connected = result["answered"], result["connected"]
        p99 = percentile(result["latency_us"], 99) / 1000 if answered else None
        reference = f"{connected} connected in {result['connect_s']:.1f} s, {answered} answered"
        if mode == "selectors":
            rows.append(Row("concurrency", f"{mode}: all {CLIENTS} answered", answered, "clients", reference,
                            target=Target(">=", CLIENTS, on="figure")))
            rows.append(Row("concurrency", f"{mode}: p99 send->reply", p99, "ms", reference))
        else:
            rows.append(Row("concurrency", f"{mode}: answered within {deadline} s", answered, "clients", reference,
                            note="for contrast: one client at a time"))
    return rows


def http(rig: r.Rig, seconds: float = 4, connections: int = 8, rounds: int = 2) -> list[Row]:
    """Keep-alive GETs of the same small file: socklab's server against ThreadingHTTPServer.

    The same load generator (one thread, ``connections`` keep-alive
    connections, bounded by count and time), alternately against each.
    """
    rates: dict[str, list[float]] = {"ours": [], "stdlib": []}
    errors = 0
    for run in range(rounds):
        for who, port in (("ours", r.HTTP_OURS), ("stdlib", r.HTTP_STDLIB)):
            _say(f"http: {connections} keep-alive connections for {seconds:g} s against {who} (round {run + 1} of {rounds})")
            result = rig.probe("http_load", rig.server_host, port, "/index.html", connections, 1_000_000, seconds)
            rates[who].append(result["requests"] / result["seconds"])
            errors += result["errors"]
    ours, stdlib = statistics.median(rates["ours"]), statistics.median(rates["stdlib"])
    return [Row("http", "keep-alive requests", ours, "req/s", f"ThreadingHTTPServer {stdlib:.0f} req/s",
                ours / stdlib, Target(">=", 1.5), f"{errors} errors" if errors else "")]
