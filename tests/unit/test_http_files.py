"""The http server's cache of small files: a hit costs one stat(), and never serves
bytes that are no longer the file's, nor a file that a name no longer reaches."""

from __future__ import annotations

import os
import shutil
import socket
import time

import pytest

from socklab.http import files
from socklab.http.files import FileCache
from socklab.http.server import HttpServer, write_demo_site

TIMEOUT = 5.0
TICK = 0.05  # longer than a kernel clock tick (1 to 10 ms)


@pytest.fixture
def old_files_count(monkeypatch):
    """Files written by the test count as old enough to be kept (no 2 s wait)."""
    monkeypatch.setattr(files, "RECENT_NS", 0)


def remember(cache: FileCache, name: str, path) -> None:
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        cache.put(name, str(path), st, f.read(), "text/plain")


def test_an_unchanged_file_is_served_from_memory(tmp_path, old_files_count):
    (tmp_path / "a.txt").write_bytes(b"first\n")
    cache = FileCache()
    remember(cache, "a.txt", tmp_path / "a.txt")
    entry = cache.get("a.txt")
    assert entry is not None and entry.body == b"first\n"


@pytest.mark.parametrize("change", ["rewrite same size", "append", "replace", "delete", "chmod"])
def test_a_changed_file_is_forgotten(tmp_path, old_files_count, change):
    path = tmp_path / "a.txt"
    path.write_bytes(b"first\n")
    cache = FileCache()
    remember(cache, "a.txt", path)
    time.sleep(TICK)  # file times move by clock ticks: the change must fall in a later one
    if change == "rewrite same size":
        path.write_bytes(b"other\n")
    elif change == "append":
        with open(path, "ab") as f:
            f.write(b"more\n")
    elif change == "replace":
        (tmp_path / "new").write_bytes(b"first\n")
        os.replace(tmp_path / "new", path)
    elif change == "delete":
        path.unlink()
    else:
        path.chmod(0o600)  # only the change time moves
    assert cache.get("a.txt") is None
    assert len(cache) == 0


def test_a_file_changed_moments_ago_is_not_kept(tmp_path):
    # Its times could still be those of its next version: see files.RECENT_NS.
    (tmp_path / "a.txt").write_bytes(b"fresh\n")
    cache = FileCache()
    remember(cache, "a.txt", tmp_path / "a.txt")
    assert cache.get("a.txt") is None


def test_big_files_are_not_kept_and_the_number_of_entries_is_bounded(tmp_path, old_files_count):
    cache = FileCache(max_entries=3, max_file=10)
    (tmp_path / "big").write_bytes(b"x" * 11)
    remember(cache, "big", tmp_path / "big")
    assert cache.get("big") is None
    for i in range(5):
        (tmp_path / f"f{i}").write_bytes(b"%d" % i)
        remember(cache, f"f{i}", tmp_path / f"f{i}")
    assert len(cache) == 3
    assert cache.get("f0") is None and cache.get("f4").body == b"4"


# --- through the server ------------------------------------------------------------


def fetch(port: int, target: str) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        for _ in range(1000):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


@pytest.fixture
def served(tmp_path, run_in_thread, old_files_count):
    root = tmp_path / "site"
    (root / "docs").mkdir(parents=True)
    write_demo_site(root)
    (root / "docs" / "a.txt").write_bytes(b"inside\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "a.txt").write_bytes(b"secret\n")
    srv = HttpServer(("127.0.0.1", 0), str(root), idle_timeout=TIMEOUT, request_timeout=TIMEOUT)
    run_in_thread(srv.serve_forever, 0.05)
    yield srv, root, tmp_path / "outside"
    srv.shutdown()
    srv.server_close()


def test_the_server_keeps_what_it_served_and_serves_the_new_version_after_a_change(served):
    srv, root, _ = served
    port = srv.server_address[1]
    assert fetch(port, "/docs/a.txt") == (200, b"inside\n")
    assert fetch(port, "/") == (200, (root / "index.html").read_bytes())
    assert srv.files.get("docs/a.txt") is not None and srv.files.get("index.html") is not None
    (root / "docs" / "a.txt").write_bytes(b"changed, and longer\n")
    assert fetch(port, "/docs/a.txt") == (200, b"changed, and longer\n")


def test_a_folder_swapped_for_a_link_outside_is_refused_not_served_from_memory(served):
    srv, root, outside = served
    port = srv.server_address[1]
    assert fetch(port, "/docs/a.txt") == (200, b"inside\n")
    shutil.rmtree(root / "docs")
    (root / "docs").symlink_to(outside)  # /docs/a.txt now names the secret
    status, body = fetch(port, "/docs/a.txt")
    assert status == 403 and b"secret" not in body
