"""The shell exercise across real containers: server and client on their own network.

One server and one client container serve the whole module (testcontainers,
no Compose). The server runs as in `make lab-shell` -- root in the container
with only SETUID, SETGID and KILL, commands run as `nobody` -- plus a short
idle timeout, so that the idle-client test is quick. Clients run in the client
container with `exec`: our client, a raw peer that reports the bytes on the
wire (peers/shell_rawpeer.py), and nc and socat, which nobody here wrote.
Every bad input ends with a check that the server still serves others, and
no test may leave a traceback in the server's log.
"""

from __future__ import annotations

import json
import shlex
import time
import uuid
from pathlib import Path
from typing import NamedTuple

import pytest

from socklab import LABEL
from support import ServerLog, sh
from socklab.framing import NEED_DATA
from socklab.shell import protocol as p

pytestmark = pytest.mark.container

PEERS = Path(__file__).parent / "peers"
PORT = 2222
TIME_LIMIT = 3
MAX_OUTPUT = 64 * 1024
IDLE_TIMEOUT = 4
PIDS_LIMIT = 256  # as docker-compose.yml gives the lab's containers
SERVER = f"python3 -m socklab server shell --time-limit {TIME_LIMIT} --max-output 64KiB --timeout {IDLE_TIMEOUT}"
HELLO = "héllo wörld ✓"  # 13 characters, 17 bytes
NOBODY = 65534


class Ran(NamedTuple):
    code: int
    out: bytes
    err: bytes


@pytest.fixture(scope="module")
def lab(images):
    """(server, client) containers on a fresh network, removed at the end."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    labels = {LABEL: "test-shell"}
    with Network(docker_network_kw={"labels": labels}) as network:
        server = (DockerContainer(images.lab)
                  .with_network(network).with_network_aliases("server")
                  .with_command(SERVER)
                  .with_kwargs(labels=labels, init=True, mem_limit="256m", pids_limit=PIDS_LIMIT,
                               cap_drop=["ALL"], cap_add=["SETUID", "SETGID", "KILL"],
                               security_opt=["no-new-privileges:true"])
                  .waiting_for(LogMessageWaitStrategy("listening on").with_startup_timeout(30)))
        client = (DockerContainer(images.lab)
                  .with_network(network)
                  .with_command("sleep infinity")
                  .with_tmpfs_mount("/data", "size=16m")
                  .with_volume_mapping(str(PEERS), "/peers", "ro")
                  .with_kwargs(labels=labels, init=True, mem_limit="256m"))
        with server, client:
            yield server, client


@pytest.fixture
def server_log(lab):
    """The server's log since this test began: ``server_log(text)`` waits for a line."""
    return ServerLog(lab[0])


@pytest.fixture(autouse=True)
def no_server_errors(server_log):
    """After each test: the server is still up, and nothing reached its handle_error()."""
    yield
    server_log.assert_healthy()


def shell(client, command: str, *options: str) -> Ran:
    """Our client, one-shot: its exit code, stdout and stderr, apart."""
    argv = ["python3", "-m", "socklab", "client", "shell", "--host", "server", *options, "-c", command]
    code, (out, err) = client.get_wrapped_container().exec_run(argv, demux=True)
    return Ran(code, out or b"", err or b"")


def raw(client, *args: str) -> dict:
    """Run the raw peer in the client container; its report, with ``data``: all bytes received."""
    code, out = client.exec(["python3", "/peers/shell_rawpeer.py", "server", str(PORT), *args])
    text = out.decode(errors="replace")
    assert code == 0, text
    report = json.loads(text.splitlines()[-1])
    report["data"] = b"".join(bytes.fromhex(c) for c in report["chunks"])
    return report


def results(data: bytes) -> list[p.Result]:
    """Every whole length-framed reply in ``data``; nothing may be left over."""
    decoder, found = p.LengthDecoder(), []
    decoder.feed(data)
    while (event := decoder.next_event()) is not NEED_DATA:
        found.append(event)
    assert decoder.buffered == 0, f"{decoder.buffered} bytes of a reply left over in {data!r}"
    return found


def assert_still_serving(client) -> None:
    ran = shell(client, "echo still here")
    assert ran == Ran(0, b"still here\n", b""), ran


# -- the normal exchange -----------------------------------------------------


def test_length_framing_returns_stdout_stderr_and_status(lab):
    _, client = lab
    ran = shell(client, f"printf '{HELLO}\\n'; ls /nonexistent; exit 3")
    assert ran.code == 3  # the remote status, as ssh gives it
    assert ran.out == f"{HELLO}\n".encode()
    assert b"/nonexistent" in ran.err and b"No such file" in ran.err


def test_ack_framing_returns_the_same_as_one_blob(lab):
    _, client = lab
    ran = shell(client, f"printf '{HELLO}\\n'; ls /nonexistent; exit 3", "--framing", "ack")
    assert ran.code == 0, ran  # the blob carries no status: the client exits 0 once it is read
    assert ran.out.startswith(f"{HELLO}\n".encode())
    assert b"No such file" in ran.out and ran.out.endswith(b"[socklab] exit status 3\n")


def test_length_header_counts_bytes_not_characters(lab):
    _, client = lab
    reply = raw(client, "--line", f"printf '{HELLO}'", "--shut")
    assert reply["eof"] and reply["error"] is None, reply
    header = p.HEADER.unpack_from(reply["data"])
    assert header[:4] == (len(HELLO.encode()), 0, 0, 0)
    (result,) = results(reply["data"])
    assert result.stdout.decode() == HELLO


def test_ack_length_counts_bytes_and_arrives_alone(lab):
    _, client = lab
    reply = raw(client, "--line", "framing ack", "--line", f"printf '{HELLO}'", "--recv", "5",
                "--line", "ack", "--shut")
    assert reply["eof"] and reply["error"] is None, reply
    length, *rest = [bytes.fromhex(c) for c in reply["chunks"]]
    assert length == b"17" != str(len(HELLO)).encode()  # bytes; and nothing after it until the ack
    assert b"".join(rest) == HELLO.encode()


def test_commands_run_as_nobody_with_a_minimal_environment(lab):
    _, client = lab
    ran = shell(client, "id -u; id -g; id -G; id -un; env")
    assert ran.code == 0, ran
    uid, gid, groups, name, *env = ran.out.decode().splitlines()
    assert (uid, gid, groups, name) == (str(NOBODY), str(NOBODY), str(NOBODY), "nobody")
    variables = dict(line.split("=", 1) for line in env)
    assert variables["USER"] == "nobody" and variables["HOME"] == "/tmp"
    # The server's own environment (PYTHONPATH, HOSTNAME...) does not leak.
    assert set(variables) <= {"PATH", "LANG", "HOME", "USER", "LOGNAME", "SHELL", "PWD"}, variables


def test_commands_cannot_act_as_root(lab):
    _, client = lab
    ran = shell(client, "cat /etc/shadow; kill -0 1")
    assert ran.code != 0
    assert b"Permission denied" in ran.err and b"Operation not permitted" in ran.err, ran


def test_several_commands_on_one_connection_from_stdin(lab):
    _, client = lab
    code, out = sh(client, "printf 'whoami\\npwd\\n\\nprintf 7\\nexit\\necho never\\n' "
                           "| python3 -m socklab client shell --host server")
    assert (code, out) == (0, "nobody\n/tmp\n7"), out


# -- the sticky-packet lesson ------------------------------------------------


def test_naive_framing_misparses_every_time(lab):
    _, client = lab
    for _ in range(5):
        ran = shell(client, "echo hello", "--framing", "naive", "--expect", "misparse")
        assert ran.code == 0, ran
        assert b"as expected, the reply was misparsed" in ran.out and b"sticky-packet" in ran.out


def test_naive_framing_without_expect_fails_naming_the_problem(lab):
    _, client = lab
    ran = shell(client, "echo hello", "--framing", "naive")
    assert ran.code == 255, ran
    assert ran.out == b""
    assert b"naive framing misparsed the reply" in ran.err
    assert b"6hello" in ran.err and b"(the sticky-packet problem)" in ran.err


def test_naive_reply_is_length_and_output_in_one_read(lab):
    _, client = lab
    reply = raw(client, "--line", "framing naive", "--line", "echo hello", "--recv", "5", "--close")
    assert reply["chunks"] == [b"6hello\n".hex()], reply  # one recv: the client cannot tell them apart


def test_naive_output_starting_with_a_digit_reads_a_wrong_length(lab):
    _, client = lab
    ran = shell(client, "printf 7", "--framing", "naive", "--timeout", "1")
    assert ran.code == 255, ran
    assert b"read a length of 17 bytes, but only 0 came" in ran.err and b"sticky-packet" in ran.err


@pytest.mark.parametrize("framing", ["ack", "length"])
@pytest.mark.parametrize(("command", "output"), [("echo hello", b"hello\n"), ("printf 7", b"7")])
def test_ack_and_length_read_what_naive_misparses(lab, framing, command, output):
    _, client = lab
    assert shell(client, command, "--framing", framing) == Ran(0, output, b"")


# -- concurrency -------------------------------------------------------------


def test_a_running_command_does_not_block_another_client(lab):
    _, client = lab
    slow = "python3 -m socklab client shell --host server -c 'sleep 2; echo slept' > /data/slow.out"
    fast = "timeout 1.5 python3 -m socklab client shell --host server -c 'echo hi'"
    code, out = sh(client, f"{slow} & s=$!; sleep 0.3; {fast}; f=$?; wait $s; echo \"fast=$f slow=$?\"; cat /data/slow.out")
    assert out.splitlines() == ["hi", "fast=0 slow=0", "slept"], out


def test_several_clients_at_once_all_meet(lab):
    # Each command waits until all have checked in: served one at a time, the
    # first would wait alone until the time limit killed it.
    _, client = lab
    n, barrier = 6, f"/tmp/barrier-{uuid.uuid4().hex}"
    command = (f"mkdir -p {barrier}; touch {barrier}/$$; "
               f"while set -- {barrier}/*; [ $# -lt {n} ]; do sleep 0.05; done; echo all $# here")
    one = f"python3 -m socklab client shell --host server -c {shlex.quote(command)}"
    code, out = sh(client, f"for i in $(seq {n}); do ({one}; echo exit $?) & done; wait")
    assert code == 0, out
    assert sorted(out.splitlines()) == sorted([f"all {n} here", "exit 0"] * n), out


# -- limits ------------------------------------------------------------------


def nobody_processes(server) -> list[str]:
    _, out = sh(server, f"ps -u {NOBODY} -o stat=,args= || true")
    return [line.strip() for line in out.splitlines() if line.strip()]


def test_time_limit_kills_the_whole_process_group(lab):
    server, client = lab
    ran = shell(client, "echo started; sleep 60 & sleep 60")
    assert ran.code == 128 + 9, ran  # SIGKILL
    assert ran.out == b"started\n"
    assert b"killed after 3." in ran.err and b"(the server's time limit)" in ran.err
    # The background child was in the group too: nothing of it survives.
    deadline = time.monotonic() + 2
    while (left := [a for a in nobody_processes(server) if "sleep 60" in a]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == [], left
    assert_still_serving(client)


def test_output_cap_is_reported_as_truncated(lab):
    _, client = lab
    ran = shell(client, "seq 1000000")
    assert ran.code == 128 + 9, ran  # stopped at the cap: nobody would see the rest
    assert len(ran.out) == MAX_OUTPUT and ran.out.startswith(b"1\n2\n3\n")
    assert ran.err == f"socklab: output truncated at {MAX_OUTPUT} bytes (the server's cap)\n".encode()
    ack = shell(client, "seq 1000000", "--framing", "ack")
    # The note follows the capped output at once, mid-line as the cap fell.
    assert ack.code == 0 and ack.out[:MAX_OUTPUT] == ran.out
    assert ack.out[MAX_OUTPUT:] == f"[socklab] output truncated at {MAX_OUTPUT} bytes\n".encode()
    expected = shell(client, "seq 1000000", "--expect", "truncated")
    assert expected.code == 0 and b"as expected, the server reported the command truncated" in expected.out


def test_fork_bomb_is_bounded_by_the_pids_limit_and_the_server_survives(lab):
    server, client = lab
    bomb = "for i in $(seq 300); do sleep 1 & done; wait; echo all forked"
    ran = shell(client, bomb)
    # More children than the container's pids limit: a fork failed, the loop
    # did not finish, and the command ended by itself (no kill needed).
    assert ran.code not in (0, 128 + 9), ran
    assert b"fork" in ran.err.lower() and b"all forked" not in ran.out, ran
    assert_still_serving(client)
    deadline = time.monotonic() + 3
    while (left := [a for a in nobody_processes(server) if "sleep" in a]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == [], left


# -- bad input: a clear error, and the server still serving ------------------


def test_undecodable_bytes_are_refused_and_the_connection_goes_on(lab):
    _, client = lab
    # bytes(range(256)) holds a \n: a line with a NUL byte, then one not UTF-8.
    reply = raw(client, "--send", (bytes(range(256)) + b"\n").hex(), "--line", "echo after", "--shut")
    assert reply["eof"] and reply["error"] is None, reply
    nul, binary, after = results(reply["data"])
    assert nul.refused and b"null byte" in nul.stderr, nul
    assert binary.refused and binary.stderr == b"socklab: refused: the command is not valid UTF-8 (byte 117)\n"
    assert after == p.Result(b"after\n", elapsed_ms=after.elapsed_ms)
    assert_still_serving(client)


def test_overlong_command_line_is_refused_then_closed(lab, server_log):
    _, client = lab
    reply = raw(client, "--fill", "61", str(p.MAX_LINE + 1))  # no newline within the limit
    assert reply["eof"] and reply["error"] is None, reply
    (refused,) = results(reply["data"])
    assert refused.refused and refused.stderr == f"socklab: refused: no end of line within {p.MAX_LINE} bytes\n".encode()
    server_log(f"{reply['local']} broke the protocol: no end of line within {p.MAX_LINE} bytes")
    # Our own client refuses it before sending anything.
    ran = shell(client, "a" * (p.MAX_LINE + 10))
    assert ran.code == 2 and f"over the {p.MAX_LINE}-byte limit".encode() in ran.err, ran
    assert_still_serving(client)


def test_unknown_framing_is_refused_then_closed(lab, server_log):
    _, client = lab
    # Nothing after the bad line: bytes left unread at close would make it an RST.
    reply = raw(client, "--line", "framing morse")
    assert reply["eof"] and reply["error"] is None, reply
    (refused,) = results(reply["data"])  # in the server's default framing
    assert refused.stderr == b"socklab: refused: unknown framing 'morse' (known: naive, ack, length)\n"
    server_log(f"{reply['local']} broke the protocol: unknown framing 'morse'")
    ran = shell(client, "echo hi", "--framing", "morse")
    assert ran.code == 2 and b"invalid choice: 'morse'" in ran.err, ran
    assert_still_serving(client)


def test_a_wrong_ack_is_refused_then_closed(lab, server_log):
    _, client = lab
    reply = raw(client, "--line", "framing ack", "--line", "echo hi", "--recv", "5", "--line", "nope")
    assert reply["eof"] and reply["error"] is None, reply
    length, *rest = [bytes.fromhex(c) for c in reply["chunks"]]
    assert length == b"3"  # the output of `echo hi` is never sent
    refusal = b"socklab: refused: expected b'ack\\n' after the length, got b'nope'\n"
    assert b"".join(rest) == str(len(refusal)).encode() + refusal
    server_log(f"{reply['local']} broke the protocol: expected b'ack\\n' after the length")
    assert_still_serving(client)


@pytest.mark.parametrize("how", ["close", "reset"])
def test_a_client_gone_while_its_command_runs(lab, server_log, how):
    _, client = lab
    reply = raw(client, "--line", "sleep 1; echo done", f"--{how}")
    peer = reply["local"]
    server_log(f"{peer} ran 'sleep 1; echo done': status 0")  # it ran to the end
    deadline = time.monotonic() + 5
    # Closed: the FIN is read after the reply is sent; reset: the reply's send fails.
    while not any(f"{peer} {end}" in server_log.since_start() for end in ("closed the connection", "connection lost")):
        assert time.monotonic() < deadline, server_log.since_start()
        time.sleep(0.1)
    assert_still_serving(client)


def test_idle_clients_are_closed_after_the_idle_timeout(lab, server_log):
    # Two at once, to take the timeout once: one that never says a word, and
    # one that stops in the middle of the ack framing, the length unanswered.
    _, client = lab
    peer = "python3 /peers/shell_rawpeer.py server 2222"
    # Each peer reports to a file of its own: on one shared stdout their
    # lines could interleave.
    code, out = sh(client, f"{peer} --read {IDLE_TIMEOUT + 4} > /tmp/idle-silent.out & "
                           f"{peer} --line 'framing ack' --line 'echo hi' --read {IDLE_TIMEOUT + 4} > /tmp/idle-ack.out & "
                           "wait; cat /tmp/idle-silent.out /tmp/idle-ack.out")
    assert code == 0, out
    silent, acking = sorted((json.loads(line) for line in out.splitlines()), key=lambda r: len(r["chunks"]))
    assert silent["chunks"] == [] and silent["eof"] and silent["error"] is None, silent
    assert bytes.fromhex("".join(acking["chunks"])) == b"3" and acking["eof"], acking
    for report in (silent, acking):
        server_log(f"{report['local']} sent nothing for {IDLE_TIMEOUT} s: closing its connection")
    assert_still_serving(client)


def test_nc_gets_the_reply_in_the_default_framing(lab):
    _, client = lab
    code, out = sh(client, f"printf 'echo hi\\n' | nc -q 2 server {PORT} | od -An -v -tx1")
    assert code == 0, out
    (result,) = results(bytes.fromhex("".join(out.split())))
    assert result == p.Result(b"hi\n", elapsed_ms=result.elapsed_ms)


def test_socat_speaks_the_naive_framing(lab):
    _, client = lab
    code, out = sh(client, f"printf 'framing naive\\necho hi\\nexit 5\\n' | socat -t 5 - TCP:server:{PORT}")
    status = "[socklab] exit status 5\n"
    assert (code, out) == (0, f"3hi\n{len(status)}{status}"), out
