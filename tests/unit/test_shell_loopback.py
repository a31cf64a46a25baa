"""Server and client of the shell exercise in one process, on loopback.

The server runs in a thread on 127.0.0.1; clients are the real ShellClient or
raw sockets for what a well-behaved client never sends. Every read has a
timeout and every loop a bound, so a bug fails a test instead of hanging it.
"""

from __future__ import annotations

import argparse
import os
import pwd
import socket
import threading
import time

import pytest

from socklab.framing import NEED_DATA
from socklab.shell import client as shell_client
from socklab.shell import protocol as p
from socklab.shell.client import ShellClient
from socklab.shell.runner import Limits
from socklab.shell.server import ShellServer

TIME_LIMIT = 1.5
MAX_OUTPUT = 4096
HELLO = "héllo wörld ✓"


@pytest.fixture
def server(run_in_thread):
    """A shell server on a free loopback port, with small limits."""
    srv = ShellServer(("127.0.0.1", 0), Limits(TIME_LIMIT, MAX_OUTPUT), idle_timeout=5)
    run_in_thread(srv.serve_forever, 0.05)
    yield srv
    srv.shutdown()
    srv.server_close()


def client_for(server, framing="length", timeout=10.0) -> ShellClient:
    return ShellClient("127.0.0.1", server.server_address[1], framing, timeout)


def raw(server, data: bytes) -> bytes:
    """Send ``data`` on a fresh connection; all that came back before the server closed."""
    with connect(server) as s:
        s.sendall(data)
        received = b""
        for _ in range(1000):
            chunk = s.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def connect(server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=5)


def receive_result(s: socket.socket) -> p.Result:
    """One length-framed reply, read with bounded recvs."""
    decoder = p.LengthDecoder()
    for _ in range(1000):
        if (event := decoder.next_event()) is not NEED_DATA:
            return event
        chunk = s.recv(65536)
        assert chunk, "the server closed the connection before replying"
        decoder.feed(chunk)
    raise AssertionError("no whole reply after 1000 reads")


def still_serves(server) -> None:
    with client_for(server) as c:
        assert c.run("echo still here").stdout == b"still here\n"


# -- the three framings ------------------------------------------------------

def test_length_framing_carries_stdout_stderr_and_status_in_bytes(server):
    with client_for(server) as c:
        result = c.run(f"printf '{HELLO}'; echo oops >&2; exit 3")
        again = c.run("true")  # several commands on one connection
    assert result.stdout == HELLO.encode() and len(result.stdout) > len(HELLO)
    assert result.stderr == b"oops\n"
    assert result.status == 3 and not result.flags
    assert again.status == 0 and again.stdout == b""


def test_ack_framing_reads_the_output_right(server):
    with client_for(server, "ack") as c:
        first = c.run(f"printf '{HELLO}'")
        second = c.run("printf 7")  # a digit right after the length: harmless with the ack between
    assert first.stdout == HELLO.encode()
    assert second.stdout == b"7"


def test_naive_framing_misparses_when_length_and_output_arrive_merged(server):
    with client_for(server, "naive") as c:
        with pytest.raises(p.Misparse, match="arrived merged"):
            c.run(f"printf '{HELLO}'")


def test_naive_framing_with_a_digit_first_reads_a_wrong_length_and_gives_up(server):
    # b"1" + b"7" is read as the length 17; the client waits, bounded by its timeout.
    with client_for(server, "naive", timeout=0.5) as c:
        with pytest.raises(p.Misparse, match="length of 17 bytes"):
            c.run("printf 7")


def test_a_client_that_names_no_framing_gets_the_servers_default(server):
    # What nc would do: the first line is already a command.
    with connect(server) as s:
        s.sendall(b"echo hi\n")
        result = receive_result(s)
    assert (result.stdout, result.stderr, result.status, result.flags) == (b"hi\n", b"", 0, 0)


# -- limits and isolation ----------------------------------------------------

def test_a_command_over_the_time_limit_is_killed_and_reported(server):
    with client_for(server) as c:
        result = c.run("echo started; sleep 30")
    assert result.timed_out and result.status < 0
    assert result.stdout == b"started\n"  # what it wrote before is kept


def test_the_time_limit_kills_the_whole_process_group(server):
    # The shell exits at once; its background child holds the pipe open.
    with client_for(server) as c:
        result = c.run("sleep 30 & echo $!")
    assert result.timed_out
    pid = int(result.stdout)
    for _ in range(200):
        if not _alive(pid):
            break
        time.sleep(0.02)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead, just not reaped
    except FileNotFoundError:
        return False


def test_output_over_the_cap_is_truncated_and_reported(server):
    with client_for(server) as c:
        result = c.run("yes")
    assert result.truncated and len(result.stdout) == MAX_OUTPUT


def test_limits_are_reported_in_the_ack_blob_too(server):
    with client_for(server, "ack") as c:
        blob = c.run("yes").stdout
    assert blob.endswith(f"[socklab] output truncated at {MAX_OUTPUT} bytes\n".encode())


def test_stdin_is_devnull_so_a_reading_command_ends(server):
    with client_for(server) as c:
        result = c.run("cat; echo done")
    assert result.stdout == b"done\n" and not result.timed_out


def test_commands_run_unprivileged(server):
    with client_for(server) as c:
        uid = int(c.run("id -u").stdout)
    expected = pwd.getpwnam("nobody").pw_uid if os.geteuid() == 0 else os.geteuid()
    assert uid == expected


# -- many clients, and clients that misbehave --------------------------------

def test_many_clients_at_once(server):
    results: dict[int, bytes] = {}

    def one(n: int) -> None:
        with client_for(server) as c:
            results[n] = c.run(f"sleep 0.2; echo {n}").stdout

    threads = [threading.Thread(target=one, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert results == {n: f"{n}\n".encode() for n in range(8)}


def test_a_command_that_is_not_utf8_is_refused_and_the_connection_goes_on(server):
    with connect(server) as s:
        s.sendall(b"framing length\n\xff\xfe\n")
        result = receive_result(s)
        s.sendall(b"echo same connection\n")
        after = receive_result(s)
    assert after.stdout == b"same connection\n"
    assert result.refused and b"not valid UTF-8" in result.stderr
    still_serves(server)


def test_an_unknown_framing_is_refused_and_the_connection_closed(server):
    reply = raw(server, b"framing smoke-signals\n")
    assert b"unknown framing" in reply
    still_serves(server)


def test_an_over_long_line_closes_the_connection_with_a_reason(server):
    reply = raw(server, b"framing ack\n" + b"x" * (p.MAX_LINE + 10))
    assert b"no end of line within" in reply
    still_serves(server)


def test_a_wrong_ack_closes_the_connection_with_a_reason(server):
    with connect(server) as s:
        s.sendall(b"framing ack\necho hi\n")
        assert s.recv(1024) == b"3"
        s.sendall(b"nope\n")
        rest = b""
        for _ in range(100):
            chunk = s.recv(1024)
            if not chunk:
                break
            rest += chunk
    assert b"expected b'ack\\n'" in rest
    still_serves(server)


def test_clients_that_vanish_do_not_stop_the_server(server):
    with connect(server) as s:
        s.sendall(b"framing length\necho par")  # gone in the middle of a line
    with connect(server) as s:
        s.sendall(b"framing length\nsleep 0.2; echo gone\n")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # close with RST
    still_serves(server)


# -- the command line --------------------------------------------------------

def cli(server, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    shell_client.add_arguments(parser)
    return shell_client.main(parser.parse_args(["--host", "127.0.0.1", "--port", str(server.server_address[1]), *argv]))


def test_one_shot_exits_with_the_remote_status(server, capfd):
    assert cli(server, "-c", f"printf '{HELLO}'; exit 3") == 3
    assert capfd.readouterr().out == HELLO


def test_expect_misparse_passes_only_when_the_framing_misparses(server, capfd):
    assert cli(server, "--framing", "naive", "--expect", "misparse", "-c", "echo hello") == 0
    assert "as expected" in capfd.readouterr().out
    assert cli(server, "--framing", "length", "--expect", "misparse", "-c", "echo hello") == 1
    assert cli(server, "--framing", "ack", "--expect", "misparse", "-c", "echo hello") == 1


def test_limits_are_told_to_the_user(server, capfd):
    assert cli(server, "--expect", "killed", "-c", "sleep 30") == 0
    assert "killed after" in capfd.readouterr().err
    assert cli(server, "-c", "yes") == 128 + 9
    assert f"output truncated at {MAX_OUTPUT} bytes" in capfd.readouterr().err


def test_a_naive_misparse_without_expect_is_a_clear_error(server, capfd):
    assert cli(server, "--framing", "naive", "-c", "echo hello") == shell_client.EXIT_FAILED
    assert "sticky-packet" in capfd.readouterr().err
