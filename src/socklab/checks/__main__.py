"""``python -m socklab.checks``: the two programs the checks run inside the containers.

    drive LAB CHECK --target HOST:PORT   run one ServerCheck against a server;
                                         the verdict is the last line, as JSON
    peer LAB NAME --port PORT            serve as one of the lab's misbehaving
                                         servers (PEERS), until killed
"""

from __future__ import annotations

import argparse
import json
import socket
import sys

from socklab.checks import LABS, lab_checks
from socklab.checks.model import ServerCheck, Verdict


def failure_of(exc: BaseException) -> str:
    """An exception in a tester, said as what the server did."""
    if isinstance(exc, ConnectionRefusedError):
        return "the connection was refused: is the server still running?"
    if isinstance(exc, socket.timeout):
        return "no answer in time"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return f"the server dropped the connection ({exc.strerror or exc})"
    if isinstance(exc, OSError):
        return f"network error: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc}"


def drive(lab: str, name: str, target: tuple[str, int]) -> Verdict:
    checks = {c.name: c for c in lab_checks(lab).CHECKS if isinstance(c, ServerCheck)}
    if name not in checks:
        raise SystemExit(f"no server check {name!r} in {lab} (checks: {', '.join(checks)})")
    try:
        return checks[name].drive(target)
    except Exception as exc:  # whatever the server did to the tester, it is the check's finding
        return Verdict.fail(failure_of(exc))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m socklab.checks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("drive", help="run one server check")
    run.add_argument("lab", choices=LABS)
    run.add_argument("check")
    run.add_argument("--target", required=True, metavar="HOST:PORT")
    peer = commands.add_parser("peer", help="serve as a misbehaving server")
    peer.add_argument("lab", choices=LABS)
    peer.add_argument("name")
    peer.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)

    if args.command == "drive":
        host, _, port = args.target.rpartition(":")
        verdict = drive(args.lab, args.check, (host, int(port)))
        print(json.dumps({"passed": verdict.passed, "why": verdict.why}), flush=True)
        return 0
    module = lab_checks(args.lab)
    peers = getattr(module, "PEERS", {})
    if args.name not in peers:
        raise SystemExit(f"no peer {args.name!r} in {args.lab} (peers: {', '.join(peers) or 'none'})")
    from socklab.checks.model import serve_peer, serve_udp_peer

    serve = serve_udp_peer if getattr(module, "TRANSPORT", "tcp") == "udp" else serve_peer
    serve(args.port, peers[args.name])
    return 0


if __name__ == "__main__":
    sys.exit(main())
