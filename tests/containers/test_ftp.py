"""The ftp exercise across real containers: server and client on their own network.

One server and one client container serve the whole module (testcontainers,
no Compose); each test runs clients in the client container with `exec`.
Every bad input ends with a check that the server still serves others.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from socklab import LABEL
from support import ServerLog, sh
from socklab.ftp import protocol as p
from socklab.samples import sample_digest

pytestmark = pytest.mark.container

PEERS = Path(__file__).parent / "peers"
SIZES = {"empty.bin": 0, "one.bin": 1, "big.bin": 16 << 20}
CLIENT = "python3 -m socklab client ftp --host server --dir /data"
IDLE_TIMEOUT = 4


@pytest.fixture(scope="module")
def lab(images):
    """(server, client) containers on a fresh network, removed at the end."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    labels = {LABEL: "test-ftp"}
    generate = " ".join(f"--generate {name}={size}" for name, size in SIZES.items())
    with Network(docker_network_kw={"labels": labels}) as network:
        server = (DockerContainer(images.lab)
                  .with_network(network).with_network_aliases("server")
                  .with_command(f"python3 -m socklab server ftp --root /srv/files --timeout {IDLE_TIMEOUT} {generate}")
                  .with_tmpfs_mount("/srv/files", "size=128m")
                  .with_tmpfs_mount("/srv/files/tiny", "size=1m")  # a full disk, on demand
                  .with_kwargs(labels=labels, mem_limit="512m", cap_drop=["ALL"])
                  .waiting_for(LogMessageWaitStrategy("listening on").with_startup_timeout(30)))
        client = (DockerContainer(images.lab)
                  .with_network(network)
                  .with_command("sleep infinity")
                  .with_tmpfs_mount("/data", "size=128m")
                  .with_volume_mapping(str(PEERS), "/peers", "ro")
                  .with_kwargs(labels=labels, mem_limit="512m", init=True))
        with server, client:
            code, out = sh(server, "mkdir /srv/files/sub && ln -s /etc /srv/files/link-out")
            assert code == 0, out
            code, out = sh(client, f"{CLIENT} get big.bin")
            assert code == 0, out
            yield server, client


def raw(client, *args: str) -> list[dict]:
    """Run the raw peer in the client container; its JSON lines, parsed."""
    code, out = sh(client, "python3 /peers/rawpeer.py server 2121 " + " ".join(args))
    assert code == 0, out
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def frame(message) -> str:
    return "--send " + p.encode(message).hex()


def server_files(server) -> list[str]:
    code, out = sh(server, "ls -A /srv/files /srv/files/tiny")
    assert code == 0, out
    return out.split()


def assert_still_serving(client) -> None:
    code, out = sh(client, f"{CLIENT} ls")
    assert code == 0 and "big.bin" in out, out


@pytest.fixture
def server_log(lab):
    """The server's log since this test began: ``server_log(text)`` waits for a line."""
    return ServerLog(lab[0])


# -- transfers ---------------------------------------------------------------


@pytest.mark.parametrize("name", SIZES)
def test_get_and_put_verify_checksums_on_both_sides(lab, name):
    server, client = lab
    code, out = sh(client, f"{CLIENT} get {name} && {CLIENT} put {name} back-{name}")
    assert code == 0, out
    assert f"get {name}: {SIZES[name]} bytes" in out and "sha256 OK" in out
    assert f"put back-{name}: {SIZES[name]} bytes" in out
    expected = sample_digest(name, SIZES[name])
    assert sh(client, f"sha256sum /data/{name}")[1].split()[0] == expected
    assert sh(server, f"sha256sum /srv/files/back-{name}")[1].split()[0] == expected


def test_md5_as_in_the_tutorials(lab):
    _, client = lab
    code, out = sh(client, f"{CLIENT} --checksum md5 get one.bin")
    assert code == 0 and "md5 OK" in out, out


def test_two_clients_at_once_both_verify(lab):
    _, client = lab
    both = f"{CLIENT} get big.bin a.bin & a=$!; {CLIENT} get big.bin b.bin & b=$!; wait $a && wait $b"
    code, out = sh(client, both)
    assert code == 0, out
    assert out.count("sha256 OK") == 2


def test_a_connected_client_does_not_hold_up_the_next(lab):
    # The holder keeps its connection open for 3 s; a server that served one
    # client at a time would keep the second waiting past its 2.5 s limit.
    _, client = lab
    ls = frame(p.Command("ls"))
    holder = f"python3 /peers/rawpeer.py server 2121 {ls} --pause 3 {ls} --read 2 > /tmp/holder.out &"
    code, out = sh(client, f"{holder} sleep 0.5; timeout 2.5 {CLIENT} get one.bin; s=$?; wait; cat /tmp/holder.out; exit $s")
    assert code == 0, out
    assert out.count('"type": "Ok"') == 2, out


# -- bad input: a clear error, nothing lost, the server still serving ---------


def test_unknown_command_is_refused_and_the_connection_goes_on(lab):
    _, client = lab
    replies = raw(client, frame(p.Command("dance", "now")), frame(p.Command("ls")), "--read 2")
    assert replies[0] == {"type": "Error", "code": "bad-command", "message": replies[0]["message"]}
    assert "unknown command 'dance'" in replies[0]["message"]
    assert replies[1]["type"] == "Ok" and "big.bin" in replies[1]["text"]
    assert_still_serving(client)


def test_malformed_header_gets_bad_frame_then_close(lab):
    _, client = lab
    replies = raw(client, "--send 5a00000000")
    assert replies[0]["code"] == "bad-frame" and "unknown frame kind" in replies[0]["message"]
    assert replies[-1] == {"eof": True}
    assert_still_serving(client)


def test_oversized_length_is_refused_before_reading_it(lab):
    _, client = lab
    replies = raw(client, "--send 4380000000")  # C, 2 GiB
    assert replies[0]["code"] == "bad-frame" and "over the 65536-byte limit" in replies[0]["message"]
    assert replies[-1] == {"eof": True}
    assert_still_serving(client)


def test_truncated_header_then_gone(lab, server_log):
    _, client = lab
    raw(client, "--send 4300", "--close")
    server_log("vanished in the middle of a message: 2 bytes of a frame had arrived")
    assert_still_serving(client)


def test_size_header_far_larger_than_the_data_then_gone(lab, server_log):
    server, client = lab
    raw(client, frame(p.Command("put", "lie.bin")), "--pause 0.2", frame(p.FileHeader(1 << 30)), "--send 00112233", "--close")
    # "still to come" counts what the server read before the peer went: a
    # reset (the peer left the "ready" unread) drops data not yet read.
    server_log("put lie.bin: cut short")
    server_log("bytes of a file body still to come; nothing was kept")
    assert not [f for f in server_files(server) if "lie.bin" in f or f.startswith(".upload-")]
    assert_still_serving(client)


def test_size_header_far_larger_than_the_data_then_silence(lab, server_log):
    server, client = lab
    replies = raw(client, frame(p.Command("put", "stall.bin")), frame(p.FileHeader(1 << 30)), "--send 00",
                  f"--read {IDLE_TIMEOUT + 4}")
    assert replies[0] == {"type": "Ok", "text": "ready"}
    assert replies[-1] == {"eof": True}  # the idle timeout closed it
    server_log(f"sent nothing for {IDLE_TIMEOUT:g} s")
    assert not [f for f in server_files(server) if "stall.bin" in f or f.startswith(".upload-")]
    assert_still_serving(client)


def test_client_gone_mid_upload_leaves_no_partial_file(lab, server_log):
    server, client = lab
    raw(client, frame(p.Command("put", "half.bin")), "--pause 0.2", frame(p.FileHeader(16 << 20)), "--zeros 8388608", "--close")
    server_log("put half.bin: cut short")
    server_log("bytes of a file body still to come; nothing was kept")
    assert not [f for f in server_files(server) if "half.bin" in f or f.startswith(".upload-")]
    assert_still_serving(client)


def test_upload_with_wrong_checksum_is_not_kept(lab):
    server, client = lab
    replies = raw(client, frame(p.Command("put", "bad.bin")), frame(p.FileHeader(4)), "--send 64617461",
                  frame(p.Digest(bytes(32))), frame(p.Command("ls")), "--read 2")
    assert [r.get("code") for r in replies[:2]] == [None, "checksum-mismatch"]
    assert replies[2]["type"] == "Ok"  # the connection goes on
    assert "bad.bin" not in replies[2]["text"]
    assert not [f for f in server_files(server) if "bad.bin" in f or f.startswith(".upload-")]


def test_get_of_a_missing_file(lab):
    _, client = lab
    code, out = sh(client, f"{CLIENT} get missing.bin 2>&1")
    assert code == 1 and "not-found: no such file: missing.bin" in out
    assert sh(client, "ls -A /data")[1].split().count("missing.bin") == 0
    assert_still_serving(client)


@pytest.mark.parametrize("name", ["../etc/passwd", "/etc/passwd", "link-out/passwd", "sub/../../etc/passwd"])
@pytest.mark.parametrize("verb", ["get", "put"])
def test_paths_that_leave_the_root_are_forbidden(lab, verb, name):
    _, client = lab
    replies = raw(client, frame(p.Command(verb, name)), "--read 2")
    assert replies[0]["type"] == "Error" and replies[0]["code"] == "forbidden", replies
    assert_still_serving(client)


def test_a_nul_byte_in_a_name_is_forbidden(lab):
    _, client = lab
    replies = raw(client, "--send " + (b"C\x00\x00\x00\x0eget big.bin\x00.x").hex(), "--read 2")
    assert replies[0]["code"] == "forbidden" and "NUL" in replies[0]["message"]


@pytest.mark.parametrize("verb", ["get", "put"])
def test_a_name_that_is_a_folder(lab, verb):
    _, client = lab
    replies = raw(client, frame(p.Command(verb, "sub")), "--read 2")
    assert replies[0]["code"] == "is-a-directory"
    assert_still_serving(client)


def test_a_full_disk_is_a_clear_error_and_leaves_nothing(lab):
    server, client = lab
    code, out = sh(client, f"{CLIENT} put big.bin tiny/big.bin 2>&1")
    assert code == 1 and "no-space" in out, out
    assert sh(server, "ls -A /srv/files/tiny")[1].strip() == ""
    assert_still_serving(client)
