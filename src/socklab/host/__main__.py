"""``python -m socklab.host COMMAND``: what the Makefile calls on the host.

    images        build the images that are missing or out of date
    lab NAME      run lab NAME end to end (make lab-NAME)
    up NAME       start lab NAME and leave it running (make up LAB=NAME)
    down          stop whatever lab is running (make down)
    bench         throughput against iperf3 and the tutorials' algorithm (make bench)
    check LAB     a solution through the lab's checks (make check-LAB SOLUTION=folder)
    grade LAB DIR every solution in DIR through the checks, a CSV of scores (make grade)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import docker.errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m socklab.host", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("images", help="build missing or outdated images")
    commands.add_parser("lab", help="run a lab end to end").add_argument("name")
    commands.add_parser("up", help="start a lab and leave it running").add_argument("name")
    commands.add_parser("down", help="stop the running lab")
    commands.add_parser("bench", help="measure throughput against references")
    check = commands.add_parser("check", help="run a solution through a lab's checks")
    check.add_argument("lab")
    check.add_argument("--solution", default="", help="a folder with server.py and client.py, or 'reference' "
                       "(default: the lab's starter)")
    check.add_argument("--out", type=Path, default=None, help="where the results go (default: labs/LAB/out)")
    check.add_argument("--time-limit", type=float, default=None, help="seconds for the whole run")
    check.add_argument("--only", action="append", default=None, metavar="CHECK", help="run only this check")
    check.add_argument("--run-id", default="", help=argparse.SUPPRESS)  # set by grade, to find leftovers
    grade = commands.add_parser("grade", help="grade every solution in a folder")
    grade.add_argument("lab")
    grade.add_argument("solutions", type=Path, help="a folder of solution folders, one per student")
    grade.add_argument("--time-limit", type=float, default=None, help="seconds per solution")
    grade.add_argument("--out", type=Path, default=None, help="where the results go (default: labs/LAB/out/grade)")
    args = parser.parse_args(argv)

    # Imported here so that `--help` works even where Docker does not.
    from socklab.host import bench, check as checking, images, lab

    try:
        if args.command == "images":
            images.ensure_images()
            return 0
        if args.command == "lab":
            return lab.run_lab(args.name)
        if args.command == "up":
            return lab.up(args.name)
        if args.command == "bench":
            return bench.main()
        if args.command == "check":
            return checking.check(args.lab, args.solution, args.out, args.time_limit, args.only, args.run_id)
        if args.command == "grade":
            from socklab.host import grade

            return grade.grade(args.lab, args.solutions, args.out, args.time_limit)
        lab.stop()
        return 0
    except (images.ImageError, lab.LabError, checking.CheckError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except docker.errors.DockerException as exc:
        print(f"error: cannot talk to Docker: {exc}\n(is the daemon running, and may you use it?)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
