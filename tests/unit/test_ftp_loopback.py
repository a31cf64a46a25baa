"""Server and client of the ftp exercise in one process, on loopback.

Fast checks of the client side that a container test cannot stage easily: a
server that lies about the digest, or vanishes in the middle of a body.
"""

from __future__ import annotations

import socket
import threading

import pytest

from socklab.ftp import protocol as p
from socklab.ftp.client import FtpClient, FtpError
from socklab.ftp.server import FtpServer
from socklab.samples import sample_digest, write_sample


@pytest.fixture
def server(tmp_path, run_in_thread):
    root = tmp_path / "served"
    root.mkdir()
    write_sample(root / "s.bin", 3 * (1 << 20) + 7)
    srv = FtpServer(("127.0.0.1", 0), str(root), idle_timeout=5)
    run_in_thread(srv.serve_forever, 0.05)
    yield srv
    srv.shutdown()
    srv.server_close()


def client_for(server, **kwargs) -> FtpClient:
    return FtpClient("127.0.0.1", server.server_address[1], progress=None, **kwargs)


@pytest.mark.parametrize("checksum", ["sha256", "md5"])
def test_get_then_put_round_trip(server, tmp_path, checksum):
    local = tmp_path / "local" / "s.bin"
    with client_for(server, checksum=checksum) as c:
        got = c.get("s.bin", local)
        put = c.put(local, "back.bin")
        listing = c.ls()
        c.quit()
    assert got.verified and put.verified and got.algorithm == checksum
    import hashlib
    assert hashlib.sha256(local.read_bytes()).hexdigest() == sample_digest("s.bin", got.size)
    assert (tmp_path / "served" / "back.bin").read_bytes() == local.read_bytes()
    assert "back.bin" in listing and "s.bin" in listing


def test_errors_come_back_as_ftp_errors_and_the_connection_goes_on(server, tmp_path):
    with client_for(server) as c:
        with pytest.raises(FtpError) as missing:
            c.get("nope", tmp_path / "nope")
        with pytest.raises(FtpError) as escape:
            c.get("../x", tmp_path / "x")
        assert c.ls().strip().endswith("s.bin")
    assert missing.value.code == p.ErrorCode.NOT_FOUND
    assert escape.value.code == p.ErrorCode.FORBIDDEN
    assert not (tmp_path / "nope").exists() and not any((tmp_path).glob(".nope*"))


def fake_server(respond):
    """A one-connection server running respond(conn) in a thread; returns its port."""
    listener = socket.create_server(("127.0.0.1", 0))

    def run():
        conn, _ = listener.accept()
        with conn, listener:
            conn.recv(1024)  # the command
            respond(conn)

    threading.Thread(target=run, daemon=True).start()
    return listener.getsockname()[1]


def test_a_wrong_digest_is_reported_as_mismatch_and_nothing_is_kept(tmp_path):
    port = fake_server(lambda conn: conn.sendall(p.encode(p.FileHeader(4)) + b"data" + p.encode(p.Digest(b"\0" * 32))))
    with FtpClient("127.0.0.1", port, progress=None) as c:
        result = c.get("f", tmp_path / "f")
    assert not result.verified and "MISMATCH" in result.summary()
    assert list(tmp_path.iterdir()) == []


def test_a_mismatch_is_said_on_stderr_like_every_failure(tmp_path, capsys):
    import io

    from socklab.ftp.client import Session

    out = io.StringIO()
    port = fake_server(lambda conn: conn.sendall(p.encode(p.FileHeader(4)) + b"data" + p.encode(p.Digest(b"\0" * 32))))
    with FtpClient("127.0.0.1", port, progress=None) as c:
        assert not Session(c, tmp_path, out).run_line("get f")
    err = capsys.readouterr().err
    assert "MISMATCH" in out.getvalue()
    assert "error: get f: the sha256 of the bytes that arrived differs from the sender's; nothing was kept" in err
    assert list(tmp_path.iterdir()) == []


def test_a_server_that_vanishes_mid_body_leaves_no_file(tmp_path):
    port = fake_server(lambda conn: conn.sendall(p.encode(p.FileHeader(1000)) + b"only this"))
    with FtpClient("127.0.0.1", port, progress=None) as c:
        with pytest.raises(ConnectionError, match="middle of a message"):
            c.get("f", tmp_path / "f")
    assert list(tmp_path.iterdir()) == []


def test_uploads_a_killed_server_left_are_removed_at_the_next_start(tmp_path):
    from socklab.ftp.server import remove_unfinished_uploads

    root, outside = tmp_path / "served", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    for path in (root / ".upload-a1", root / "sub" / ".upload-b2", root / "keep.bin", outside / ".upload-c3"):
        path.write_bytes(b"half")
    (root / "link-out").symlink_to(outside)  # not followed: outside the root is not ours
    removed = remove_unfinished_uploads(root)
    assert sorted(p.relative_to(root).as_posix() for p in removed) == [".upload-a1", "sub/.upload-b2"]
    assert (root / "keep.bin").exists() and (outside / ".upload-c3").exists()


def test_a_server_gone_silent_mid_body_is_a_clear_error_and_nothing_kept(tmp_path, capsys, run_in_thread):
    # What a client sees of a killed server container whose FIN never came.
    from socklab.cli import main

    listener = socket.create_server(("127.0.0.1", 0))
    release = threading.Event()

    def silent_after_ten_bytes() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(1024)  # the get
            conn.sendall(p.encode(p.FileHeader(100)) + bytes(10))
            release.wait(10)

    run_in_thread(silent_after_ten_bytes)
    try:
        code = main(["client", "ftp", "--host", "127.0.0.1", "--port", str(listener.getsockname()[1]),
                     "--timeout", "0.5", "--dir", str(tmp_path), "get", "x.bin"])
    finally:
        release.set()
        listener.close()
    assert code == 2
    assert "failed: no answer from the server for 0.5 s (stopped, or unreachable)" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # neither x.bin nor its temporary file
