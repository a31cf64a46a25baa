"""``python -m socklab.host COMMAND``: what the Makefile calls on the host.

    images        build the images that are missing or out of date
    lab NAME      run lab NAME end to end (make lab-NAME)
    up NAME       start lab NAME and leave it running (make up LAB=NAME)
    down          stop whatever lab is running (make down)
    bench         throughput against iperf3 and the tutorials' algorithm (make bench)
"""

from __future__ import annotations

import argparse
import sys

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
    args = parser.parse_args(argv)

    # Imported here so that `--help` works even where Docker does not.
    from socklab.host import bench, images, lab

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
        lab.stop()
        return 0
    except (images.ImageError, lab.LabError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except docker.errors.DockerException as exc:
        print(f"error: cannot talk to Docker: {exc}\n(is the daemon running, and may you use it?)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
