"""The corpus of path escapes (escapes.py) against ftp get, put, ls and http GET.

Each test checks afterwards that nothing outside the served folder changed:
the canaries keep their bytes and no file appeared beside them.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from urllib.parse import quote

import pytest

import escapes
from socklab.ftp import protocol as ftp
from socklab.ftp.client import FtpClient, FtpError
from socklab.http.client import HttpClient
from targets import CANARY

TIMEOUT = 10.0
PAYLOAD = b"written by the escape tests\n"


def outside_state(base: Path, root: Path) -> dict[str, str]:
    """Every file under ``base`` but outside ``root``, and /etc/passwd: name -> digest of its bytes."""
    state = {}
    for folder, dirs, files in os.walk(base):
        if Path(folder) == root:
            dirs.clear()  # the served folder may change; only what is outside it may not
            continue
        for name in files:
            path = Path(folder, name)
            state[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    state["/etc/passwd"] = hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest()
    return state


@pytest.fixture
def untouched(tree):
    """Fails the test if anything outside the served folder changed during it."""
    base, root, outside = tree
    before = outside_state(base, root)
    yield
    assert outside_state(base, root) == before
    assert (base / "secret").read_bytes() == CANARY and (outside / "canary.txt").read_bytes() == CANARY


def test_the_corpus_holds_at_least_30_escapes():
    assert len(escapes.ESCAPES) >= 30 and len(set(escapes.ESCAPES)) == len(escapes.ESCAPES)


ESCAPE_IDS = [repr(name)[:40] for name in escapes.ESCAPES]
LOOKALIKE_IDS = [repr(name)[:40] for name in escapes.LOOKALIKES]


def escape_names(tree) -> list[str]:
    return escapes.escapes(tree[2])


@pytest.fixture
def ftp_client(ftp_server):
    with FtpClient(*ftp_server.address(), progress=None, timeout=TIMEOUT) as client:
        yield client


# --- ftp -------------------------------------------------------------------------------


@pytest.mark.parametrize("index", range(len(escapes.ESCAPES)), ids=ESCAPE_IDS)
def test_ftp_get_of_an_escape_is_forbidden(tree, ftp_client, untouched, index, tmp_path):
    name = escape_names(tree)[index]
    with pytest.raises(FtpError) as refused:
        ftp_client.get(name, tmp_path / "got")
    assert refused.value.code == ftp.ErrorCode.FORBIDDEN, refused.value
    assert not (tmp_path / "got").exists()
    assert ftp_client.ls()  # the connection goes on


@pytest.mark.parametrize("index", range(len(escapes.ESCAPES)), ids=ESCAPE_IDS)
def test_ftp_put_of_an_escape_is_forbidden_before_a_byte_is_sent(tree, ftp_client, untouched, index, tmp_path):
    name = escape_names(tree)[index]
    local = tmp_path / "payload"
    local.write_bytes(PAYLOAD)
    with pytest.raises(FtpError) as refused:
        ftp_client.put(local, name)
    assert refused.value.code == ftp.ErrorCode.FORBIDDEN, refused.value


@pytest.mark.parametrize("index", range(len(escapes.ESCAPES)), ids=ESCAPE_IDS)
def test_ftp_ls_of_an_escape_is_forbidden(tree, ftp_client, untouched, index):
    with pytest.raises(FtpError) as refused:
        ftp_client.ls(escape_names(tree)[index])
    assert refused.value.code == ftp.ErrorCode.FORBIDDEN, refused.value


@pytest.mark.parametrize("name", escapes.LOOKALIKES, ids=LOOKALIKE_IDS)
def test_ftp_lookalikes_are_found_nowhere_and_stored_only_inside(tree, ftp_client, untouched, name, tmp_path):
    _, root, _ = tree
    with pytest.raises(FtpError) as missing:
        ftp_client.get(name, tmp_path / "got")
    # Forbidden is fine too: ftp strips the spaces around a command's argument, so " ../x" is "../x".
    assert missing.value.code in (ftp.ErrorCode.NOT_FOUND, ftp.ErrorCode.FORBIDDEN), missing.value
    local = tmp_path / "payload"
    local.write_bytes(PAYLOAD)
    try:
        stored = ftp_client.put(local, name)
    except FtpError as refused:  # no such folder inside the root: fine too
        assert refused.code in (ftp.ErrorCode.NOT_FOUND, ftp.ErrorCode.FORBIDDEN), refused
    else:
        assert stored.verified
        inside = root / name
        assert inside.read_bytes() == PAYLOAD  # under exactly that name, in the served folder
        inside.unlink()


# --- http ------------------------------------------------------------------------------


def get(server, target: str) -> tuple[int, bytes]:
    with HttpClient(*server.address(), timeout=TIMEOUT) as client:
        body = bytearray()
        exchange = client.request("GET", target, sink=body.extend)
        return exchange.response.status, bytes(body)


def http_target(name: str) -> str:
    """The request target a browser would send for ``name``: percent-encoded, after one slash."""
    return "/" + quote(name, safe="/")


@pytest.mark.parametrize("index", range(len(escapes.ESCAPES)), ids=ESCAPE_IDS)
def test_http_get_of_an_escape_is_forbidden(tree, http_server, untouched, index):
    status, body = get(http_server, http_target(escape_names(tree)[index]))
    assert status == 403 and CANARY not in body, (status, body[:200])


@pytest.mark.parametrize("target", escapes.HTTP_ONLY)
def test_http_encoded_escapes_are_refused(http_server, untouched, target):
    status, body = get(http_server, target)
    assert status in (400, 403, 404) and CANARY not in body and b"root:" not in body, (status, body[:200])


@pytest.mark.parametrize("name", escapes.LOOKALIKES, ids=LOOKALIKE_IDS)
def test_http_lookalikes_are_not_found(http_server, untouched, name):
    status, body = get(http_server, http_target(name))
    assert status in (403, 404) and CANARY not in body, (status, body[:200])
