"""The echo exercise across real containers: servers and client on their own network.

Two server containers serve the whole module (testcontainers, no Compose),
each running the three loops at once, as `make lab-echo` does: blocking on
7007, threaded on 7008, selectors on 7009. ``server`` upper-cases (the
tutorials' reply); ``plain`` runs ``--reply echo``. Both have no capabilities,
no-new-privileges, and memory and pids limits, plus a short idle timeout so
that the idle-client tests are quick.

Clients run in the client container with `exec`: our client; a raw peer that
reports the bytes on the wire (peers/shell_rawpeer.py, which knows no
protocol); peers/echo_peer.py for many clients at once and for one that never
reads; and nc, socat and bash's /dev/tcp, which nobody here wrote. Every bad
input ends with a check that the server still serves others in that mode, and
no test may leave a traceback in a server's log.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import uuid
from pathlib import Path
from typing import NamedTuple

import pytest

from socklab import LABEL
from support import ServerLog, sh

pytestmark = pytest.mark.container

PEERS = Path(__file__).parent / "peers"
MODES = {"blocking": 7007, "threaded": 7008, "selectors": 7009}
CONCURRENT = ["threaded", "selectors"]
IDLE_TIMEOUT = 4
MAX_LINE = 65536  # spelled out: the tests check the wire, not the module's constant
SERVER = f"python3 -m socklab server echo --mode blocking threaded selectors --timeout {IDLE_TIMEOUT}"
# serve_all logs the first mode's "listening" last: then all three are up. (A regex: escaped.)
READY = "echo server (blocking, reply {reply}) listening on"
LIMITS = dict(cap_drop=["ALL"], security_opt=["no-new-privileges:true"], mem_limit="256m", pids_limit=256)
IDLE_ERROR = f"ERROR idle-timeout: nothing received for {IDLE_TIMEOUT} s, closing\n".encode()
TOO_LONG = f"ERROR line-too-long: no end of line within {MAX_LINE} bytes\n".encode()


class Lab(NamedTuple):
    server: object  # --reply upper
    plain: object  # --reply echo
    client: object


class Ran(NamedTuple):
    code: int
    out: bytes
    err: bytes


def run(container, argv: list[str]) -> Ran:
    """A command's exit code, stdout and stderr, apart."""
    code, (out, err) = container.get_wrapped_container().exec_run(argv, demux=True)
    return Ran(code, out or b"", err or b"")


def echo(client, mode: str, *words: str, host: str = "server") -> Ran:
    """Our client, one-shot, against one mode."""
    return run(client, ["timeout", "20", "python3", "-m", "socklab", "client", "echo",
                        "--host", host, "--port", str(MODES[mode]), *words])


def raw(client, mode: str, *args: str, host: str = "server") -> dict:
    """The raw peer's report, with ``data``: every byte the server sent, in order."""
    code, out = client.exec(["timeout", "30", "python3", "/peers/shell_rawpeer.py", host, str(MODES[mode]), *args])
    text = out.decode(errors="replace")
    assert code == 0, text
    report = json.loads(text.splitlines()[-1])
    report["data"] = b"".join(bytes.fromhex(c) for c in report["chunks"])
    return report


def assert_still_serving(client, mode: str) -> None:
    assert echo(client, mode, "still", "there?") == Ran(0, b"STILL THERE?\n", b"")


def cat(container, path: str) -> str | None:
    """The file's text, or None while it does not exist."""
    code, out = sh(container, f"cat {path}")
    return out if code == 0 else None


def poll(what: str, check, timeout: float = 15):
    """check()'s first truthy result, tried every 0.1 s for up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)
    return result


@pytest.fixture(scope="module")
def lab(images):
    """Both servers and the client on a fresh network, removed at the end."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    labels = {LABEL: "test-echo"}

    def server(alias: str, reply: str):
        return (DockerContainer(images.lab)
                .with_network(network).with_network_aliases(alias)
                .with_command(f"{SERVER} --reply {reply}")
                .with_kwargs(labels=labels, **LIMITS)
                .waiting_for(LogMessageWaitStrategy(re.escape(READY.format(reply=reply))).with_startup_timeout(30)))

    with Network(docker_network_kw={"labels": labels}) as network:
        client = (DockerContainer(images.lab)
                  .with_network(network)
                  .with_command("sleep infinity")
                  .with_tmpfs_mount("/data", "size=16m")
                  .with_volume_mapping(str(PEERS), "/peers", "ro")
                  .with_kwargs(labels=labels, init=True, mem_limit="512m"))
        with server("server", "upper") as upper, server("plain", "echo") as plain, client:
            yield Lab(upper, plain, client)


@pytest.fixture
def server_log(lab):
    """The upper server's log since this test began: ``server_log(text or regex)`` waits for it."""
    return ServerLog(lab.server)


@pytest.fixture(autouse=True)
def no_server_errors(lab):
    """After each test: both servers still up, and nothing reached handle_error() or the selectors' guard."""
    logs = [ServerLog(lab.server), ServerLog(lab.plain)]
    yield
    for log in logs:
        log.assert_healthy()


@pytest.fixture
def workdir(lab):
    """A fresh folder in the client container, for one test's files."""
    path = f"/data/{uuid.uuid4().hex}"
    assert sh(lab.client, f"mkdir {path}")[0] == 0
    yield path
    sh(lab.client, f"rm -rf {path}")


def established(container, port: int, side: str = "dport") -> list[str]:
    """Local ip:port of each ESTABLISHED connection whose ``side`` port is ``port``."""
    code, out = sh(container, f"ss -Htn state established '( {side} = :{port} )'")
    assert code == 0, out
    return [line.split()[-2] for line in out.splitlines() if line.strip()]


def listen_queue(server, port: int) -> int:
    """Recv-Q of the listening socket: connections that completed the handshake and wait for accept()."""
    code, out = sh(server, f"ss -Hltn '( sport = :{port} )'")
    assert code == 0 and out.split()[0] == "LISTEN", out
    return int(out.split()[1])


@contextlib.contextmanager
def holding(client, mode: str, workdir: str):
    """Our client, connected to ``mode`` and answered, kept connected until the block ends.

    It sends a line every 0.3 s, so that the idle timeout never closes it.
    Yields its ip:port; on leaving, it closes and must have exited 0.
    """
    port, d = MODES[mode], f"{workdir}/holder"
    poll("connections of earlier tests to close", lambda: established(client, port) == [], timeout=5)
    script = (f"mkdir {d}; while [ ! -e {d}/release ]; do echo hold; sleep 0.3; done "
              f"| python3 -m socklab client echo --host server --port {port} > {d}/out 2> {d}/err; echo $? > {d}/rc")
    client.get_wrapped_container().exec_run(["sh", "-c", script], detach=True)
    try:
        poll("the holder's first reply", lambda: (cat(client, f"{d}/out") or "").startswith("HOLD\n"))
        (peer,) = established(client, port)
        yield peer
    finally:
        sh(client, f"touch {d}/release")
    code, rc = sh(client, f"timeout 10 sh -c 'until [ -s {d}/rc ]; do sleep 0.1; done'; cat {d}/rc {d}/err")
    assert rc == "0\n", rc


# -- the normal exchange, in every mode --------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_one_line_comes_back_upper_cased(lab, mode):
    assert echo(lab.client, mode, "hello", "world") == Ran(0, b"HELLO WORLD\n", b"")


@pytest.mark.parametrize("mode", MODES)
def test_lines_from_stdin_share_one_connection_and_the_empty_line_is_not_sent(lab, server_log, mode):
    code, out = sh(lab.client, "printf 'first line\\n\\nsecond line\\nexit is data here\\n' | "
                               f"timeout 20 python3 -m socklab client echo --host server --port {MODES[mode]}")
    assert (code, out) == (0, "FIRST LINE\nSECOND LINE\nEXIT IS DATA HERE\n"), out
    logs = server_log(f"({mode}) closed the connection")
    assert logs.count(f"({mode}) connected") == 1, logs


@pytest.mark.parametrize("mode", MODES)
def test_utf8_is_upper_cased_as_text_even_when_it_grows(lab, mode):
    # ß -> SS and ΐ -> Ϊ́ (three code points): the reply is longer than the line.
    line = "héllo wörld ß ΐ ✓"
    ran = echo(lab.client, mode, line)
    assert ran == Ran(0, "HÉLLO WÖRLD SS \u0399\u0308\u0301 ✓\n".encode(), b""), ran
    assert len(ran.out) > len(line.encode()) + 1


@pytest.mark.parametrize("mode", MODES)
def test_reply_echo_sends_lines_back_unchanged(lab, mode):
    ran = echo(lab.client, mode, "héllo", "wörld", "ß", host="plain")
    assert ran == Ran(0, "héllo wörld ß\n".encode(), b""), ran
    # A line that looks like the server's last words comes back as data: our
    # client knows it sent it, so it prints it rather than calling it an error.
    ran = echo(lab.client, mode, "ERROR idle-timeout: not really", host="plain")
    assert ran == Ran(0, b"ERROR idle-timeout: not really\n", b""), ran
    line = b"caf\xe9 \xff\xfe nul\x00 end\r"
    reply = raw(lab.client, mode, "--send", (line + b"\n").hex(), "--shut", host="plain")
    assert (reply["data"], reply["eof"], reply["error"]) == (line + b"\n", True, None), reply


# -- clients nobody here wrote -----------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_nc(lab, mode):
    code, out = sh(lab.client, f"printf 'hello from nc\\n' | timeout 10 nc -N server {MODES[mode]}")
    assert (code, out) == (0, "HELLO FROM NC\n"), out
    # nc -C ends lines with CRLF, as telnet does: the CR is part of the line, so it comes back.
    code, out = sh(lab.client, f"printf 'héllo\\n' | timeout 10 nc -C -N server {MODES[mode]}")
    assert (code, out) == (0, "HÉLLO\r\n"), out


@pytest.mark.parametrize("mode", MODES)
def test_socat(lab, mode):
    code, out = sh(lab.client, f"printf 'one\\ntwo\\n' | timeout 10 socat -t 5 - TCP:server:{MODES[mode]}")
    assert (code, out) == (0, "ONE\nTWO\n"), out


@pytest.mark.parametrize("mode", MODES)
def test_bash_dev_tcp(lab, mode):
    script = f"exec 3<>/dev/tcp/server/{MODES[mode]}; printf 'hello from bash\\n' >&3; head -n 1 <&3"
    code, out = sh(lab.client, f"timeout 10 bash -c {json.dumps(script)}")
    assert (code, out) == (0, "HELLO FROM BASH\n"), out


# -- the teaching point: one client at a time, or not -------------------------


def test_blocking_leaves_a_second_client_connected_but_unanswered_in_the_backlog(lab, server_log, workdir):
    client, port = lab.client, MODES["blocking"]
    second = (f"timeout 3 python3 -m socklab client echo --host server --port {port} -v second "
              f"> {workdir}/out 2> {workdir}/err; echo $? > {workdir}/rc")
    with holding(client, "blocking", workdir) as holder:
        client.get_wrapped_container().exec_run(["sh", "-c", second], detach=True)
        # The kernel completed the second's handshake: ESTABLISHED on the client's side...
        peers = poll("both connections established", lambda: (p := established(client, port))[1:] and p)
        (waiting,) = set(peers) - {holder}
        # ...and queued on the server's listening socket, where Recv-Q counts
        # connections that wait for accept().
        poll("Recv-Q 1 on the server's listening socket", lambda: listen_queue(lab.server, port) == 1, timeout=5)
        rc = poll("the second client's timeout", lambda: cat(client, f"{workdir}/rc"))
        assert rc == "124\n"  # killed by timeout: no reply came
        assert cat(client, f"{workdir}/out") == ""
        err = cat(client, f"{workdir}/err")
        assert f"connected to server:{port} in" in err and "reply after" not in err, err
        assert f"{waiting} (blocking) connected" not in server_log.since_start()
    # Only once the first has left does the server accept the second (gone by now).
    logs = server_log(f"{waiting} (blocking) connected")
    assert logs.index(f"{holder} (blocking) closed") < logs.index(f"{waiting} (blocking) connected"), logs
    assert_still_serving(client, "blocking")


@pytest.mark.parametrize("mode", CONCURRENT)
def test_threaded_and_selectors_answer_a_second_client_at_once(lab, workdir, mode):
    with holding(lab.client, mode, workdir):
        ran = run(lab.client, ["timeout", "10", "python3", "-m", "socklab", "client", "echo",
                               "--host", "server", "--port", str(MODES[mode]), "-v", "second"])
        assert ran.code == 0 and ran.out == b"SECOND\n", ran
        assert listen_queue(lab.server, MODES[mode]) == 0  # nobody waits for accept()


@pytest.mark.parametrize("mode", CONCURRENT)
def test_fifty_clients_at_once_are_all_answered(lab, server_log, mode):
    code, out = sh(lab.client, f"timeout 30 python3 /peers/echo_peer.py many server {MODES[mode]} 50")
    assert code == 0, out
    report = json.loads(out)
    assert report == {"connected": 50, "replies": [f"CLIENT {i}\n" for i in range(50)]}, report
    logs = server_log(f"({mode}) closed the connection")
    assert logs.count(f"({mode}) connected") == 50, logs


# -- bad input: a clear error, and the server still serving in that mode ------


@pytest.mark.parametrize("mode", MODES)
def test_overlong_line_gets_an_error_line_then_the_close(lab, server_log, mode):
    reply = raw(lab.client, mode, "--fill", "78", "70000", "--read", "10")  # 70 000 x, no LF
    assert (reply["data"], reply["eof"], reply["error"]) == (TOO_LONG, True, None), reply
    server_log(f"{reply['local']} ({mode}) broke the protocol: no end of line within {MAX_LINE} bytes")
    assert_still_serving(lab.client, mode)


@pytest.mark.parametrize("mode", MODES)
def test_a_line_of_exactly_the_limit_is_answered_one_more_byte_is_not(lab, mode):
    reply = raw(lab.client, mode, "--fill", "78", str(MAX_LINE), "--line", "", "--shut")
    assert (reply["data"], reply["eof"], reply["error"]) == (b"X" * MAX_LINE + b"\n", True, None), reply
    reply = raw(lab.client, mode, "--fill", "78", str(MAX_LINE + 1), "--line", "", "--read", "10")
    assert (reply["data"], reply["eof"], reply["error"]) == (TOO_LONG, True, None), reply
    assert_still_serving(lab.client, mode)


def test_our_client_refuses_an_overlong_line_before_sending(lab, server_log):
    ran = echo(lab.client, "selectors", "x" * 70000)
    assert ran.code == 1 and ran.out == b"", ran
    assert ran.err == b"error: not sent: line of 70000 bytes exceeds the 65536-byte limit\n", ran
    server_log("(selectors) closed the connection")  # it connected, sent nothing, left


@pytest.mark.parametrize("mode", MODES)
def test_garbage_nul_and_invalid_utf8_come_back_as_the_protocol_defines(lab, mode):
    # bytes(range(256)) holds an LF: a line of control bytes (valid UTF-8,
    # no letters: unchanged), then 0x0b..0xff (not UTF-8: ASCII letters only
    # are upper-cased, every other byte as is).
    lines = [bytes(range(10)), bytes(range(11, 256)), b"caf\xe9 \xff\xfe nul\x00 end\r", "héllo".encode()]
    expected = [bytes(range(10)),
                bytes(range(11, 97)) + b"ABCDEFGHIJKLMNOPQRSTUVWXYZ" + bytes(range(123, 256)),
                b"CAF\xe9 \xff\xfe NUL\x00 END\r",
                "HÉLLO".encode()]
    reply = raw(lab.client, mode, "--send", b"".join(line + b"\n" for line in lines).hex(), "--shut")
    assert (reply["eof"], reply["error"]) == (True, None), reply
    assert reply["data"].split(b"\n") == [*expected, b""]
    assert_still_serving(lab.client, mode)


@pytest.mark.parametrize("mode", MODES)
def test_a_client_vanishing_mid_line(lab, server_log, mode):
    reply = raw(lab.client, mode, "--line", "whole line", "--recv", "5", "--send", b"half a li".hex(), "--close")
    assert reply["data"] == b"WHOLE LINE\n", reply
    server_log(f"{reply['local']} ({mode}) vanished in the middle of a message: 9 bytes of a line had arrived")
    assert_still_serving(lab.client, mode)


@pytest.mark.parametrize("mode", MODES)
def test_a_client_resetting_mid_line(lab, server_log, mode):
    reply = raw(lab.client, mode, "--line", "whole line", "--recv", "5", "--send", b"half".hex(),
                "--pause", "0.2", "--reset")  # SO_LINGER 0: close sends RST
    assert reply["data"] == b"WHOLE LINE\n", reply
    server_log(f"{reply['local']} ({mode}) connection lost: Connection reset by peer")
    assert_still_serving(lab.client, mode)


def test_idle_clients_are_told_why_and_closed_after_the_timeout(lab, server_log, workdir):
    # In every mode at once, to wait out the timeout once: a client that never
    # says a word, and one that stops after a line.
    peer = "python3 /peers/shell_rawpeer.py server"
    script = " ".join(f"{peer} {port} --read {2 * IDLE_TIMEOUT + 4} > {workdir}/{port}-silent & "
                      f"{peer} {port} --line hi --read {2 * IDLE_TIMEOUT + 4} > {workdir}/{port}-spoke & "
                      for port in MODES.values())
    code, out = sh(lab.client, f"{script} wait")
    assert code == 0, out
    for mode, port in MODES.items():
        for kind, before in (("silent", b""), ("spoke", b"HI\n")):
            report = json.loads(cat(lab.client, f"{workdir}/{port}-{kind}"))
            data = b"".join(bytes.fromhex(c) for c in report["chunks"])
            assert (data, report["eof"], report["error"]) == (before + IDLE_ERROR, True, None), (mode, report)
            server_log(f"{report['local']} ({mode}) sent nothing for {IDLE_TIMEOUT} s: closing its connection")
    # The blocking server served its two idle clients one after the other.
    for mode in MODES:
        assert_still_serving(lab.client, mode)


# Selectors: the server stops reading a client with HIGH_WATER (1 MiB) of
# replies unsent, and drops it once nothing has moved for the idle timeout.
# Threaded: the client's thread waits in sendall() until the idle timeout.
# Either way only that client waits; without the limit, the selectors server
# would buffer the whole flood (and meet its memory limit).
# Both say so in the log: the replies wait unread (the selectors server sees
# its own queue; the threaded one asks the kernel for its send queue).
@pytest.mark.parametrize("mode", ["selectors", "threaded"])
def test_a_client_that_never_reads_its_replies_stalls_only_itself(lab, server_log, workdir, mode):
    client, out = lab.client, f"{workdir}/flood"
    client.get_wrapped_container().exec_run(
        ["sh", "-c", f"timeout 90 python3 /peers/echo_peer.py flood server {MODES[mode]} > {out}"], detach=True)
    stalled = json.loads(poll("the flood to stall", lambda: (cat(client, out) or "").partition("\n")[0], timeout=30))
    assert stalled["stalled"] and stalled["sent"] < 64 << 20, stalled  # the server stopped reading
    assert_still_serving(client, mode)  # while that client is stuck
    last_words = f"{stalled['local']} ({mode}) read nothing of our replies for {IDLE_TIMEOUT:g} s ("
    server_log(last_words, timeout=3 * IDLE_TIMEOUT + 5)
    dropped = json.loads(poll("the flood to be dropped", lambda: (cat(client, out) or "").splitlines()[1:])[0])
    assert dropped["dropped_after"] is not None, dropped
    assert dropped["error"] in ("ConnectionResetError", "BrokenPipeError"), dropped
    assert_still_serving(client, mode)
