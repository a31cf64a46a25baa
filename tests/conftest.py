"""Fixtures shared by the whole suite.

Container tests need a Docker daemon. In CI (CI=true) a missing daemon is a
failure, never a skip; elsewhere those tests skip with a message saying so.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import threading

import pytest

from socklab import LABEL

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
RYUK_IMAGE = "testcontainers/ryuk"


def _ryuk_available() -> bool:
    try:
        out = subprocess.run(["docker", "image", "ls", "-q", RYUK_IMAGE], capture_output=True, text=True, timeout=20)
        return bool(out.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        return False


# Ryuk, testcontainers' reaper, is itself an image from a registry. Where it
# cannot be had, run without it: every fixture here removes what it started.
# (testcontainers reads this when first imported, so it is set before that.)
if "TESTCONTAINERS_RYUK_DISABLED" not in os.environ and not _ryuk_available():
    os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"


@pytest.fixture(scope="session")
def docker_client():
    """A Docker client, or a skip (a failure in CI) when no daemon answers."""
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # any failure to reach the daemon means the same here
        message = f"no usable Docker daemon ({exc})"
        if IN_CI:
            pytest.fail(f"{message}: container tests must run in CI", pytrace=False)
        pytest.skip(f"{message}: container tests skipped")
    yield client
    _remove_leftovers(client)
    client.close()


def _remove_leftovers(client) -> None:
    """Last line of defence: what this session's tests created, gone even after a failure."""
    from testcontainers.core.labels import LABEL_SESSION_ID, SESSION_ID

    session = {"label": [f"{LABEL_SESSION_ID}={SESSION_ID}"]}
    for container in client.containers.list(all=True, filters=session):
        container.remove(force=True, v=True)
    for network in client.networks.list(filters=session):
        network.remove()


@pytest.fixture(scope="session")
def images(docker_client):
    """The lab's images, built once per session (only what is missing)."""
    from socklab.host.images import ensure_images

    return ensure_images(docker_client)


@pytest.fixture(autouse=True)
def restore_logging():
    """Undo a server main()'s logging set-up at the end of its test.

    setup_logging() binds the root logger to the sys.stdout of the moment,
    which pytest closes when that test ends; a server thread still running
    would then log into a closed file.
    """
    saved = logging.root.handlers[:]
    yield
    logging.root.handlers[:] = saved


@pytest.fixture
def loopback_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def run_in_thread():
    """Start a function in a daemon thread; joined (bounded) at teardown."""
    threads = []

    def start(target, *args):
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        threads.append(thread)
        return thread

    yield start
    for thread in threads:
        thread.join(timeout=10)


__all__ = ["IN_CI", "LABEL"]
