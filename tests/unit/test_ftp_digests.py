"""The server's digest cache: a file is hashed once, and never trusted once it changed."""

from __future__ import annotations

import hashlib
import os

import pytest

from socklab.connection import Connection
from socklab.ftp import digests
from socklab.ftp.client import FtpClient
from socklab.ftp.digests import DigestCache
from socklab.ftp.server import FtpServer

SIZE = 3 * (1 << 20) + 7


@pytest.fixture
def settle_now(monkeypatch):
    """Files written by the test count as settled at once (not 2 s later)."""
    monkeypatch.setattr(digests, "SETTLE_NS", 0)


@pytest.fixture
def server(tmp_path, run_in_thread):
    root = tmp_path / "served"
    root.mkdir()
    (root / "f.bin").write_bytes(b"a" * SIZE)
    srv = FtpServer(("127.0.0.1", 0), str(root), idle_timeout=5)
    run_in_thread(srv.serve_forever, 0.05)
    yield srv
    srv.shutdown()
    srv.server_close()


def get(server, local):
    with FtpClient("127.0.0.1", server.server_address[1], progress=None) as c:
        return c.get("f.bin", local)


def rewrite_in_place(path, byte: bytes, keep_mtime: bool = True) -> None:
    """Same size, other content; mtime put back, as `touch -d` could."""
    st = os.stat(path)
    with open(path, "r+b") as f:
        f.write(byte * st.st_size)
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_only_a_file_settled_before_hashing_began_is_remembered(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"x")
    st = os.stat(path)
    cache = DigestCache()
    assert not cache.remember("sha256", st, st, b"d", hashing_started_ns=st.st_mtime_ns)
    assert cache.get("sha256", st) is None
    later = max(st.st_mtime_ns, st.st_ctime_ns) + digests.SETTLE_NS
    assert cache.remember("sha256", st, st, b"d", hashing_started_ns=later)
    assert cache.get("sha256", st) == b"d" and cache.get("md5", st) is None


def test_a_file_changed_while_hashed_is_not_remembered(tmp_path, settle_now):
    path = tmp_path / "x"
    path.write_bytes(b"x")
    before = os.stat(path)
    rewrite_in_place(path, b"y")
    after = os.stat(path)
    cache = DigestCache()
    assert not cache.remember("sha256", before, after, b"d", digests.now_ns())
    assert cache.get("sha256", before) is None and cache.get("sha256", after) is None


def test_the_least_recently_used_digest_goes_first(tmp_path, settle_now):
    cache = DigestCache(capacity=2)
    stats = []
    for name in "abc":
        (tmp_path / name).write_bytes(name.encode())
        stats.append(os.stat(tmp_path / name))
    cache.remember("sha256", stats[0], stats[0], b"a", digests.now_ns())
    cache.remember("sha256", stats[1], stats[1], b"b", digests.now_ns())
    cache.get("sha256", stats[0])
    cache.remember("sha256", stats[2], stats[2], b"c", digests.now_ns())
    assert [cache.get("sha256", st) for st in stats] == [b"a", None, b"c"]


def test_a_second_get_uses_the_cached_digest(server, tmp_path, settle_now, monkeypatch):
    hashed = []
    original = Connection.send_body
    monkeypatch.setattr(Connection, "send_body", lambda self, *a: hashed.append(1) or original(self, *a))
    first, second = get(server, tmp_path / "1"), get(server, tmp_path / "2")
    assert first.verified and second.verified and len(hashed) == 1
    assert (tmp_path / "2").read_bytes() == b"a" * SIZE


def test_an_empty_file_is_served_from_the_cache_too(server, tmp_path, settle_now):
    (tmp_path / "served" / "f.bin").write_bytes(b"")
    assert get(server, tmp_path / "1").verified and len(server.digests) == 1
    assert get(server, tmp_path / "2").verified and (tmp_path / "2").read_bytes() == b""


def test_a_file_rewritten_with_the_same_size_and_mtime_is_hashed_again(server, tmp_path, settle_now):
    assert get(server, tmp_path / "1").verified and len(server.digests) == 1
    rewrite_in_place(tmp_path / "served" / "f.bin", b"b")  # ctime still tells
    assert get(server, tmp_path / "2").verified
    assert (tmp_path / "2").read_bytes() == b"b" * SIZE


def test_a_file_changed_while_sent_from_the_cache_is_not_kept_and_not_served_stale(server, tmp_path, settle_now,
                                                                                   monkeypatch):
    assert get(server, tmp_path / "1").verified
    original = Connection.send_file

    def changed_midway(self, source, size):
        rewrite_in_place(tmp_path / "served" / "f.bin", b"c")  # before its bytes left
        original(self, source, size)

    monkeypatch.setattr(Connection, "send_file", changed_midway)
    torn = get(server, tmp_path / "2")
    assert not torn.verified and not (tmp_path / "2").exists()  # the cached digest was of "a"s
    assert len(server.digests) == 0
    monkeypatch.setattr(Connection, "send_file", original)
    again = get(server, tmp_path / "3")
    assert again.verified and (tmp_path / "3").read_bytes() == b"c" * SIZE


def test_a_file_changed_while_hashed_and_sent_gets_no_cache_entry(server, tmp_path, settle_now, monkeypatch):
    original = Connection.send_body

    def changed_after_first_chunk(self, source, size, on_chunk):
        chunks = []

        def chunk(piece):
            on_chunk(piece)
            chunks.append(len(piece))
            if len(chunks) == 1:
                rewrite_in_place(tmp_path / "served" / "f.bin", b"d")
        original(self, source, size, chunk)

    monkeypatch.setattr(Connection, "send_body", changed_after_first_chunk)
    mixed = get(server, tmp_path / "1")
    # The D frame names what was sent (so it verifies), but is no version's digest: not kept.
    assert mixed.verified and len(server.digests) == 0
    monkeypatch.setattr(Connection, "send_body", original)
    assert get(server, tmp_path / "2").verified
    assert hashlib.sha256((tmp_path / "2").read_bytes()).digest() == hashlib.sha256(b"d" * SIZE).digest()
