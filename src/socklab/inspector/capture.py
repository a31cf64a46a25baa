"""Capture the server's traffic with tcpdump; when stopped, show what it holds.

The inspector container shares the server's network namespace, so tcpdump on
its eth0 sees exactly what the server sends and receives, while the server
container itself keeps no capture privileges.

    python -m socklab inspector capture --out /out/capture.pcap --filter "port 2121" --exercise ftp

Runs until SIGTERM or SIGINT (``docker stop``), then stops tcpdump so that
it flushes the file, prints the timeline (payload decoded as ``--exercise``)
and the summary, draws the sequence diagram beside the pcap (capture.svg),
and hands both files to ``--owner``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from socklab.inspector.decoders import EXERCISES
from socklab.inspector.pcap import PcapError, read_pcap
from socklab.inspector.redirect import ImpairedPath
from socklab.inspector.sockets import SocketWatcher
from socklab.inspector.summary import summarize
from socklab.inspector.svg import sequence_diagram
from socklab.inspector.timeline import build, collapse, render

DRAIN_SECONDS = 0.5


def _say(message: str) -> None:
    print(f"inspector: {message}", flush=True)


def _relay(stream, ready: threading.Event, notes: list[str]) -> None:
    for line in stream:
        line = line.strip()
        if "listening on" in line:
            ready.set()
        elif line:
            notes.append(line)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--interface", default="eth0", help="interface to capture on (default: %(default)s)")
    parser.add_argument("--out", default="/out/capture.pcap", help="pcap file to write (default: %(default)s)")
    parser.add_argument("--filter", default="", help="tcpdump filter expression, e.g. 'port 2121'")
    parser.add_argument("--owner", default="", help="UID:GID to give the capture to when done (the host user)")
    impair = parser.add_argument_group("impairment (a proxy in the path, see socklab.inspector.redirect)")
    impair.add_argument("--impair", default="", metavar="SCENARIO|SPEC",
                        help="slicer, merger, slow, reset, blackhole, lossy, or a spec such as delay=50ms,jitter=10ms")
    impair.add_argument("--loss", default="", metavar="FRACTION", help="datagrams or segments lost, e.g. 0.2")
    impair.add_argument("--seed", type=int, default=1, help="seed of every random choice (default: %(default)s)")
    impair.add_argument("--port", type=int, default=0, help="the server's port to impair")
    impair.add_argument("--transport", choices=("tcp", "udp"), default="tcp", help="(default: %(default)s)")
    # Not a `choices` list: the lab's name comes from the runner, and a lab
    # without a decoder should still get its capture, timeline and summary.
    parser.add_argument("--exercise", default="",
                        help=f"decode the payload with this exercise's wire format ({', '.join(sorted(EXERCISES))})")


def _chown(path: Path, owner: str) -> None:
    if owner and path.exists():
        uid, _, gid = owner.partition(":")
        os.chown(path, int(uid), int(gid or uid))


def report(pcap: Path, exercise: str, owner: str = "") -> int:
    """Print the timeline and the summary of ``pcap``; draw capture.svg beside it."""
    try:
        packets = read_pcap(pcap)
    except (OSError, PcapError) as exc:
        _say(f"cannot read the capture: {exc}")
        return 1
    rows, conversations = build(packets, exercise)
    shown = collapse(rows)
    print(render(shown, conversations, exercise), flush=True)
    print(summarize(packets), flush=True)
    picture = pcap.with_name("capture.svg")
    try:
        picture.write_text(sequence_diagram(shown, conversations, f"{exercise or 'capture'}: {pcap.name}"))
        _chown(picture, owner)
    except OSError as exc:  # the transcript matters more than the picture
        _say(f"cannot write {picture}: {exc}")
        return 1
    _say(f"sequence diagram: {picture}")
    return 0


def main(args: argparse.Namespace) -> int:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    impaired = None
    if args.impair or args.loss:
        record = str(Path(args.out).with_name("impairment.txt"))  # the seed, beside the capture
        impaired = ImpairedPath(args.port, args.transport, args.impair, args.loss, args.seed, record)
        try:
            impaired.start()
        except RuntimeError as exc:
            _say(str(exc))
            return 1
        _say(f"impairing port {args.port}/{args.transport} through a proxy: {impaired.log[0] if impaired.log else ''}")

    # --immediate-mode and -U: each packet reaches the file as it comes, so
    # the file is complete up to the moment we stop. -B: a 32 MiB kernel
    # buffer, because a lab's bulk transfer arrives faster than tcpdump
    # writes (the default 2 MiB dropped packets). -Z root: stay root rather
    # than switch to the tcpdump user, who could not write to /out.
    command = ["tcpdump", "-i", args.interface, "-w", args.out, "-U", "--immediate-mode", "-B", "32768",
               "-n", "-Z", "root", *args.filter.split()]
    tcpdump = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    ready, notes = threading.Event(), []
    relay = threading.Thread(target=_relay, args=(tcpdump.stderr, ready, notes), daemon=True)
    relay.start()
    while not ready.wait(0.1):
        if tcpdump.poll() is not None:
            relay.join(1)
            _say(f"tcpdump failed (exit {tcpdump.returncode}): {' '.join(notes)}")
            return 1
    _say(f"capturing on {args.interface} (filter: {args.filter or 'none'}) to {args.out}")
    sockets = SocketWatcher().start()

    while not stop.wait(0.2):
        if tcpdump.poll() is not None:
            _say(f"tcpdump stopped by itself (exit {tcpdump.returncode})")
            break
    if tcpdump.poll() is None:
        # tcpdump stops at once on SIGINT, dropping what is still in the kernel
        # buffer: give it a moment to drain the last packets (the close) first.
        time.sleep(DRAIN_SECONDS)
        tcpdump.send_signal(signal.SIGINT)
        tcpdump.wait(timeout=10)
    relay.join(2)
    sockets.stop()
    if impaired:
        proxy_log = impaired.stop()
        _chown(Path(args.out).with_name("impairment.txt"), args.owner)
        print("the impairment proxy's log:\n" + "\n".join(f"  {line}" for line in proxy_log), flush=True)
    for note in notes:  # tcpdump's own count: "N packets captured", "N dropped by kernel"
        _say(f"tcpdump: {note}")
    print(sockets.report(), flush=True)
    _chown(Path(args.out), args.owner)
    return report(Path(args.out), args.exercise, args.owner)

