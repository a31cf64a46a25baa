"""Servers for the fuzz folder's targeted tests: one of each, per module, on a served_tree."""

from __future__ import annotations

import pytest

from harness import ServerProcess
from targets import served_tree


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """(base, root, outside) of a targets.served_tree, with its canaries."""
    base = tmp_path_factory.mktemp("tree")
    root, outside = served_tree(base)
    return base, root, outside


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """A folder for server logs, outside the served tree."""
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="module")
def ftp_server(tree, logs):
    with ServerProcess("ftp", ["--root", str(tree[1]), "--timeout", "10"], logs / "ftp.log") as server:
        yield server


@pytest.fixture(scope="module")
def http_server(tree, logs):
    """An http server whose started requests must be whole within 10 s (408 after)."""
    with ServerProcess("http", ["--root", str(tree[1]), "--timeout", "20", "--request-timeout", "10"],
                       logs / "http.log") as server:
        yield server
