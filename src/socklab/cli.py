"""``python -m socklab <role> <exercise> [options]``: the entry point of every role.

    python -m socklab server ftp --root /srv/files --port 2121
    python -m socklab client ftp --host server get big.bin
    python -m socklab inspector capture --out /out/capture.pcap
    python -m socklab inspector summary /out/capture.pcap

Each exercise module is imported only when chosen, so ``--help`` stays quick
and one exercise's bug cannot stop another from starting.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: role -> {name: (module, one-line description)}
COMMANDS = {
    "server": {
        "echo": ("socklab.echo.server", "echo server: lines back upper-cased; blocking, threaded or selectors loop"),
        "ftp": ("socklab.ftp.server", "FTP-like file server (get/put/ls, checksummed)"),
        "ftp-naive": ("socklab.ftp.naive", "the tutorials' file server, for comparison (one client, no checks)"),
        "http": ("socklab.http.server", "HTTP/1.1 static file server (GET/HEAD, keep-alive)"),
        "hello": ("socklab.http.hello", "the tutorials' HTTP hello world, fixed for Python 3"),
        "shell": ("socklab.shell.server", "SSH-like remote command server (framing naive|ack|length, limited)"),
        "udp": ("socklab.udp.server", "UDP echo server; --drop a seeded fraction of datagrams"),
    },
    "client": {
        "echo": ("socklab.echo.client", "echo client: one line, lines from stdin, or a prompt"),
        "ftp": ("socklab.ftp.client", "FTP-like client: one command, a script, or a prompt"),
        "ftp-naive": ("socklab.ftp.naive", "the tutorials' file client, for comparison"),
        "http": ("socklab.http.client", "HTTP/1.1 client: several paths on one connection"),
        "shell": ("socklab.shell.client", "SSH-like client: -c COMMAND or a >> prompt; --framing naive|ack|length"),
        "udp": ("socklab.udp.client", "UDP client: echo messages, or ping with loss and RTT statistics"),
    },
    "inspector": {
        "capture": ("socklab.inspector.capture", "capture the server's traffic to a pcap; summary on stop"),
        "summary": ("socklab.inspector.summary", "what crossed the network, from a pcap file"),
        "proxy": ("socklab.inspector.proxy", "relay TCP or UDP to the server, impaired: delay, slicing, merging, loss..."),
        "timeline": ("socklab.inspector.timeline", "a capture packet by packet, payload decoded per exercise; --svg draws it"),
    },
}


def build_parser(chosen: tuple[str, str] | None = None) -> argparse.ArgumentParser:
    """The parser; the options of ``chosen`` (role, name) are added, by its module."""
    parser = argparse.ArgumentParser(prog="python -m socklab", description="socklab: socket programming across real containers.")
    roles = parser.add_subparsers(dest="role", required=True, metavar="ROLE")
    for role, commands in COMMANDS.items():
        role_parser = roles.add_parser(role, help=f"run the {role} role")
        metavar = "COMMAND" if role == "inspector" else "EXERCISE"
        names = role_parser.add_subparsers(dest="name", required=True, metavar=metavar)
        for name, (module, description) in commands.items():
            sub = names.add_parser(name, help=description, description=description)
            sub.set_defaults(module=module)
            if chosen == (role, name):
                importlib.import_module(module).add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = tuple(argv[:2]) if len(argv) >= 2 and argv[1] in COMMANDS.get(argv[0], {}) else None
    args = build_parser(chosen).parse_args(argv)
    return importlib.import_module(args.module).main(args)
