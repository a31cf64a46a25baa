"""``make check-<lab>``: a student's server and client against the reference, pitfall by pitfall.

Each lab has a module here (``socklab.checks.echo``...) that says, in one place:

    CONTRACT   how a solution's programs are started (server.py, client.py)
               and the same for the reference implementations
    CHECKS     the checks, each named after the pitfall it looks for:
               ServerCheck  the student's server, driven by a tester program
                            (``drive``, run in a container of its own)
               ClientCheck  the student's client, run against the reference
                            server or a misbehaving one (a ``peer``), judged by
                            its exit status, output and files
    PEERS      misbehaving servers for the client checks

Between the two sides sits the inspector's impairing proxy (``IMPAIR``): one
byte at a time (partial recv), messages merged (sticky packets), each message
alone (the tutorials' world, for the happy path), a reset or silence midway.
The host side (``socklab.host.check``) starts the containers, the proxy and a
capture for every check, and reports; nothing here touches Docker.

    python -m socklab.checks drive echo server-basic --target proxy:7007
    python -m socklab.checks peer echo error-reply --port 7007
"""

from __future__ import annotations

import importlib
from types import ModuleType

LABS = ("echo", "ftp", "shell", "udp", "http")


def lab_checks(lab: str) -> ModuleType:
    """The checks module of ``lab``."""
    if lab not in LABS:
        raise KeyError(f"no checks for {lab!r} (labs: {', '.join(LABS)})")
    return importlib.import_module(f"socklab.checks.{lab}")
