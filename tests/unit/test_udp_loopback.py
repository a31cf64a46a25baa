"""Server and client of the udp exercise in one process, on loopback.

Each wait is bounded by a socket timeout; nothing asserts how long anything
took. Loss is staged by the server's seeded --drop, duplicates and reordering
by a fake server that misbehaves on purpose.
"""

from __future__ import annotations

import argparse
import io
import logging
import select
import signal
import socket
import subprocess
import sys
import threading
import tomllib
from pathlib import Path

import pytest

from socklab import cli
from socklab.udp import client as c
from socklab.udp import protocol as p
from socklab.udp.server import Dropper, UdpEchoServer

TIMEOUT = 0.5  # per reply; only reached by datagrams the server drops


def start_server(run_in_thread, drop: float = 0.0, seed: int | None = None) -> UdpEchoServer:
    srv = UdpEchoServer(("127.0.0.1", 0), drop, seed)
    run_in_thread(srv.serve_forever, 0.05)
    return srv


@pytest.fixture
def server(run_in_thread):
    """An echo server that drops nothing."""
    srv = start_server(run_in_thread)
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def lossy_server(run_in_thread):
    """An echo server dropping 30% of each client's datagrams, seed 50 (as the lab)."""
    srv = start_server(run_in_thread, 0.3, 50)
    yield srv
    srv.shutdown()
    srv.server_close()


def port_of(srv) -> int:
    return srv.server_address[1]


def raw_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    return s


def client_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    c.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_each_sendto_is_one_datagram_and_comes_back_whole(server):
    messages = [b"one", b"", b"three is longer", b"x" * p.MAX_PAYLOAD_IPV4]
    with raw_socket() as s:
        for m in messages:  # back to back: on TCP these could merge into one recv
            s.sendto(m, server.server_address)
        replies = [s.recvfrom(c.RECV_SIZE) for _ in messages]
    assert [data for data, _ in replies] == messages  # loopback keeps the order
    assert {addr for _, addr in replies} == {server.server_address}


def test_garbage_is_echoed_and_the_server_keeps_serving(server):
    with raw_socket() as s:
        for junk in (b"\xff\x00" * 9, b"PING", b"PING" + b"\x00" * 12):
            s.sendto(junk, server.server_address)
            assert s.recv(c.RECV_SIZE) == junk
    server.shutdown()  # waits for the loop, so the counter is final
    assert server.echoed == 3


@pytest.mark.parametrize("connect", [False, True], ids=["sendto", "connect"])
def test_echo_client_gets_every_message_back(server, connect):
    out = io.StringIO()
    with c.UdpEndpoint("127.0.0.1", port_of(server), connect=connect) as endpoint:
        unanswered = c.echo(endpoint, [b"hello", b"world"], TIMEOUT, retries=0, out=out)
    assert unanswered == 0
    assert out.getvalue().count("reply from 127.0.0.1:") == 2


def test_echo_main_stops_at_exit_and_resends_what_the_server_dropped(lossy_server, capsys):
    # Seed 50 drops the 2nd and 4th datagram of each client: "b" once, "c" once.
    args = client_args("echo", "--host", "127.0.0.1", "--port", str(port_of(lossy_server)),
                       "--timeout", str(TIMEOUT), "a", "b", "c", "exit", "never sent")
    assert c.main(args) == 0
    out = capsys.readouterr().out
    assert out.count("sending it again") == 2
    assert "never sent" not in out and lossy_server.dropped == 2


def ping_once(srv, count: int = 10) -> tuple:
    out = io.StringIO()
    with c.UdpEndpoint("127.0.0.1", port_of(srv)) as endpoint:
        stats = c.ping(endpoint, count, TIMEOUT, out=out)
    return stats.sent, stats.received, stats.lost, stats.lost_sequences, stats.duplicates


def test_a_fixed_seed_loses_the_same_pings_on_every_run(lossy_server):
    first, second = ping_once(lossy_server), ping_once(lossy_server)
    assert first == second
    predicted = Dropper(0.3, 50)
    expected_lost = [seq for seq in range(10) if predicted.should_drop("client")]
    assert first == (10, 10 - len(expected_lost), len(expected_lost), expected_lost, 0)


def test_ping_main_prints_the_summary_and_succeeds_despite_loss(lossy_server, capsys):
    args = client_args("ping", "--host", "127.0.0.1", "--port", str(port_of(lossy_server)),
                       "--timeout", str(TIMEOUT), "--count", "6", "--size", "64")
    assert c.main(args) == 0
    out = capsys.readouterr().out
    assert "6 sent, 4 received, 2 lost (33.3% loss), 0 duplicates, 0 out of order" in out
    assert "lost: seq 1, 3" in out and "rtt min/avg/max/stddev" in out
    assert "seq=1: request timed out" in out


def fake_server(respond) -> tuple[socket.socket, threading.Event, threading.Thread]:
    """A UDP socket on loopback answering with respond(sock, data, addr) in a thread."""
    sock = raw_socket()
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def run():
        while not stop.is_set():
            try:
                data, addr = sock.recvfrom(c.RECV_SIZE)
            except (socket.timeout, OSError):
                continue
            respond(sock, data, addr)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return sock, stop, thread


@pytest.fixture
def misbehaving():
    """Start fake servers; stopped and closed (bounded) at teardown."""
    started = []

    def start(respond):
        sock, stop, thread = fake_server(respond)
        started.append((sock, stop, thread))
        return sock.getsockname()[1]

    yield start
    for sock, stop, thread in started:
        stop.set()
        thread.join(timeout=5)
        sock.close()


def test_the_pinger_counts_duplicates_once(misbehaving):
    port = misbehaving(lambda sock, data, addr: [sock.sendto(data, addr) for _ in range(2)])
    out = io.StringIO()
    with c.UdpEndpoint("127.0.0.1", port) as endpoint:
        stats = c.ping(endpoint, 4, TIMEOUT, out=out)
    assert (stats.sent, stats.received, stats.lost, stats.duplicates) == (4, 4, 0, 4)
    assert "DUPLICATE" in out.getvalue()


def test_the_pinger_counts_an_overtaken_reply_as_received_out_of_order(misbehaving):
    held = []

    def hold_seq_0(sock, data, addr):
        if p.decode(data).sequence == 0:
            held.append(data)  # answered only after seq 1: it is overtaken
            return
        sock.sendto(data, addr)
        for old in held:
            sock.sendto(old, addr)
        held.clear()

    port = misbehaving(hold_seq_0)
    out = io.StringIO()
    with c.UdpEndpoint("127.0.0.1", port) as endpoint:
        stats = c.ping(endpoint, 3, TIMEOUT, out=out)
    assert (stats.received, stats.lost, stats.out_of_order, stats.duplicates) == (3, 0, 1, 0)
    assert "seq=0: request timed out" in out.getvalue() and "(out of order) (late)" in out.getvalue()


def test_the_echo_client_ignores_a_stray_reply(misbehaving):
    port = misbehaving(lambda sock, data, addr: (sock.sendto(b"stale", addr), sock.sendto(data, addr)))
    out = io.StringIO()
    with c.UdpEndpoint("127.0.0.1", port) as endpoint:
        assert c.echo(endpoint, [b"fresh"], TIMEOUT, retries=0, out=out) == 0
    assert "stray reply (5 bytes: b'stale')" in out.getvalue()


def test_plain_prints_only_the_echoes_and_the_notes_on_stderr(lossy_server, capsys):
    # make check-udp's contract: what a student's client prints, the reference prints too.
    args = client_args("echo", "--plain", "--host", "127.0.0.1", "--port", str(port_of(lossy_server)),
                       "--timeout", str(TIMEOUT), "a", "", "c")
    assert c.main(args) == 0
    captured = capsys.readouterr()
    assert captured.out == "a\n\nc\n"
    assert "sending it again" in captured.err and "reply from" in captured.err


def test_plain_says_on_stderr_which_message_got_no_echo(misbehaving, capsys):
    port = misbehaving(lambda sock, data, addr: sock.sendto(data.upper(), addr))  # not an echo
    args = client_args("echo", "--plain", "--host", "127.0.0.1", "--port", str(port),
                       "--timeout", str(TIMEOUT), "--retries", "1", "ABC", "def")
    assert c.main(args) == c.EXIT_UNANSWERED
    captured = capsys.readouterr()
    assert captured.out == "ABC\n"  # the stray b"DEF" is not printed as the echo of b"def"
    assert "gave up on 3 bytes: b'def' after 2 tries" in captured.err


def test_a_datagram_over_65507_bytes_is_refused_clearly(server, capsys):
    args = client_args("echo", "--host", "127.0.0.1", "--port", str(port_of(server)), "--size", "65508")
    assert c.main(args) == c.EXIT_TOO_BIG
    out = capsys.readouterr().out
    assert "refused by the kernel (EMSGSIZE)" in out and "at most 65507 bytes" in out
    assert server.echoed == 0


def test_expect_refusal_turns_the_refusal_into_success_and_a_send_into_failure(server, capsys):
    base = ["--host", "127.0.0.1", "--port", str(port_of(server)), "--expect-refusal"]
    assert c.main(client_args("ping", *base, "--size", "70000", "--count", "1")) == 0
    assert "refused, as expected" in capsys.readouterr().out
    assert c.main(client_args("echo", *base, "--size", "100", "--timeout", str(TIMEOUT))) == 1
    assert "expected to be refused" in capsys.readouterr().err


def test_the_path_mtu_explanation_names_the_mtu(server):
    with c.UdpEndpoint("127.0.0.1", port_of(server), dont_fragment=True) as endpoint:
        message = endpoint.explain_too_big(2000)  # loopback's MTU is large: staged, not sent
        mtu = endpoint.path_mtu()
    assert mtu and f"path MTU: {mtu} bytes, so at most {mtu - 28} bytes" in message
    assert "Don't Fragment" in message


def test_dont_fragment_still_sends_what_fits(server):
    out = io.StringIO()
    with c.UdpEndpoint("127.0.0.1", port_of(server), dont_fragment=True) as endpoint:
        assert c.echo(endpoint, [p.pad(1400)], TIMEOUT, retries=0, out=out) == 0


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_connected_socket_hears_that_nobody_listens(capsys):
    args = client_args("echo", "--connect", "--host", "127.0.0.1", "--port", str(free_udp_port()),
                       "--timeout", str(TIMEOUT), "hi")
    assert c.main(args) == c.EXIT_NETWORK
    assert "nobody is listening" in capsys.readouterr().err


def test_an_unconnected_socket_only_times_out(capsys):
    args = client_args("echo", "--host", "127.0.0.1", "--port", str(free_udp_port()),
                       "--timeout", "0.2", "--retries", "0", "hi")
    assert c.main(args) == c.EXIT_UNANSWERED
    assert "gave up" in capsys.readouterr().out


def test_drops_are_logged(lossy_server, caplog):
    with caplog.at_level(logging.INFO, logger="socklab"), raw_socket() as s:
        s.settimeout(TIMEOUT)
        for seq in range(3):  # seed 50 keeps the 1st and 3rd, drops the 2nd
            s.sendto(p.encode_sized(seq, 0, 16), lossy_server.server_address)
        # One socket, handled in order: the echo of seq 2 means seq 1 was handled.
        assert [p.decode(s.recv(c.RECV_SIZE)).sequence for _ in range(2)] == [0, 2]
    assert any("ping seq=1, 16 bytes: DROPPED" in r.getMessage() for r in caplog.records)


def test_the_cli_registers_the_exercise_like_ftp(monkeypatch):
    # What cli.COMMANDS will hold once the udp entries are added there.
    monkeypatch.setitem(cli.COMMANDS["server"], "udp", ("socklab.udp.server", "UDP echo server"))
    monkeypatch.setitem(cli.COMMANDS["client"], "udp", ("socklab.udp.client", "UDP client"))
    args = cli.build_parser(("client", "udp")).parse_args(["client", "udp", "ping", "--count", "3", "--host", "h"])
    assert (args.module, args.mode, args.count, args.host, args.port) == ("socklab.udp.client", "ping", 3, "h", 9999)
    args = cli.build_parser(("server", "udp")).parse_args(["server", "udp", "--drop", "0.3", "--seed", "50"])
    assert (args.module, args.drop, args.seed, args.port) == ("socklab.udp.server", 0.3, 50, 9999)


SERVE = """
import argparse, sys
from socklab.udp import server
parser = argparse.ArgumentParser()
server.add_arguments(parser)
sys.exit(server.main(parser.parse_args(sys.argv[1:])))
"""


def test_the_server_stops_cleanly_on_sigterm():
    proc = subprocess.Popen([sys.executable, "-c", SERVE, "--host", "127.0.0.1", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        line = proc.stdout.readline() if ready else ""
        assert "listening on" in line
        # One echo first: it proves the serving loop runs, so SIGTERM lands inside it.
        with raw_socket() as s:
            s.sendto(b"up?", ("127.0.0.1", int(line.rsplit(":", 1)[1])))
            assert s.recv(c.RECV_SIZE) == b"up?"
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0
    assert "stopping" in output


LAB = Path(__file__).resolve().parents[2] / "labs" / "udp" / "lab.toml"


def test_the_lab_steps_pass_against_a_loopback_server(run_in_thread, monkeypatch, capsys):
    """labs/udp/lab.toml, step by step, with `server` replaced by loopback."""
    lab = tomllib.loads(LAB.read_text())
    drop, seed = lab["server_args"][1], lab["server_args"][3]
    srv = start_server(run_in_thread, float(drop), int(seed))
    monkeypatch.setitem(cli.COMMANDS["client"], "udp", ("socklab.udp.client", "UDP client"))
    try:
        for step in lab["steps"]:
            argv = step["run"]
            assert argv[:5] == ["python3", "-m", "socklab", "client", "udp"]
            if "--dont-fragment" in argv:
                continue  # needs an MTU smaller than 3000: true on the lab network, not on loopback
            argv = [a if a != "server" else "127.0.0.1" for a in argv[3:]]
            status = cli.main(argv + ["--port", str(port_of(srv)), "--timeout", str(TIMEOUT)])
            assert status == 0, step["title"]
    finally:
        srv.shutdown()
        srv.server_close()
    out = capsys.readouterr().out
    assert "20 sent, 14 received, 6 lost (30.0% loss)" in out
    assert "lost: seq 1, 3, 6, 9, 10, 14" in out
    assert out.count("sending it again") == 3 and "(not sent" not in out
    assert "refused, as expected" in out and "3000 bytes" in out
