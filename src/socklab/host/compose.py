"""Running the lab's docker-compose.yml with whichever Compose this machine has.

``docker compose`` (v2, the plugin) is preferred; ``docker-compose`` (v1.29)
is the fallback. The Makefile makes the same choice and passes it down in
SOCKLAB_COMPOSE, so ``make COMPOSE=docker-compose ...`` reaches here too.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

from socklab.host.paths import COMPOSE_FILE

PROJECT = "socklab"


class ComposeError(RuntimeError):
    pass


def _works(command: list[str]) -> bool:
    try:
        return subprocess.run([*command, "version"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@lru_cache(maxsize=1)
def compose_command() -> tuple[str, ...]:
    chosen = os.environ.get("SOCKLAB_COMPOSE", "").strip()
    if chosen:
        return tuple(shlex.split(chosen))
    if _works(["docker", "compose"]):
        return ("docker", "compose")
    # v1 is not run to ask, as the Makefile does not: a Python program, half a second to start.
    if shutil.which("docker-compose"):
        return ("docker-compose",)
    raise ComposeError("neither `docker compose` (v2) nor `docker-compose` (v1) works on this machine: install one")


class Compose:
    """``compose -p socklab -f docker-compose.yml [-f override] ...`` with the lab's variables.

    ``override`` is a lab's own compose.yml, merged over the main file: how a
    lab asks for what only it needs (the shell lab's capabilities).
    """

    def __init__(self, env: dict[str, str] | None = None, override: Path | None = None) -> None:
        self.env = {**os.environ, **(env or {})}
        files = [COMPOSE_FILE, *([override] if override else [])]
        self.base = [*compose_command(), "-p", PROJECT, *(arg for f in files for arg in ("-f", str(f)))]

    def run(self, *args: str, check: bool = True, capture: bool = False) -> subprocess.CompletedProcess:
        result = subprocess.run([*self.base, *args], env=self.env, text=True,
                                stdout=subprocess.PIPE if capture else None,
                                stderr=subprocess.STDOUT if capture else None)
        if check and result.returncode != 0:
            output = f":\n{result.stdout}" if capture and result.stdout else ""
            raise ComposeError(f"`{' '.join(['compose', *args])}` failed (exit {result.returncode}){output}")
        return result
