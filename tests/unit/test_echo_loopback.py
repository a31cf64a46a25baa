"""The echo server's three loops and its client, in one process, on loopback.

Every mode gets the same conversation and the same bad inputs; the modes
differ only in concurrency: a blocking server makes a second client wait
while the first is connected, the threaded and selectors servers do not.
Every socket has a timeout, so no test can hang.
"""

from __future__ import annotations

import argparse
import io
import select
import socket
import struct

import pytest

from socklab.echo import client as echo_client
from socklab.echo import protocol as p
from socklab.echo import server as echo_server
from socklab.echo.client import EchoClient, EchoError
from socklab.loops import MODES as MODES_BY_NAME

MODES = ["blocking", "threaded", "selectors"]
CONCURRENT = ["threaded", "selectors"]
WAIT = 5.0  # generous: only a broken server takes this long
STILL_WAITING = 0.5  # how long a queued client is watched to get nothing


@pytest.fixture
def lab(run_in_thread):
    """start(mode, ...) -> port of a server in a thread; connect(port) -> a socket. All closed at teardown."""
    servers, sockets = [], []

    def start(mode: str, reply: str = "upper", idle_timeout: float = 10.0, busy_poll: float = 0.0) -> int:
        server = echo_server.create_server(mode, ("127.0.0.1", 0), reply, idle_timeout, busy_poll)
        servers.append(server)
        run_in_thread(server.serve_forever, 0.05)
        return server.server_address[1]

    def connect(port: int) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        sockets.append(sock)
        return sock

    yield start, connect
    for sock in sockets:  # first the clients: a blocking server finishes its current one before it stops
        sock.close()
    for server in servers:
        server.shutdown()
        server.server_close()


def read_line(sock: socket.socket) -> bytes:
    """One reply line (with its LF), read byte by byte so nothing after it is taken."""
    line = b""
    for _ in range(p.MAX_REPLY + 1):
        byte = sock.recv(1)
        if not byte:
            raise ConnectionError(f"closed after {line!r}")
        line += byte
        if byte == b"\n":
            return line
    raise AssertionError("reply longer than MAX_REPLY")


def read_to_end(sock: socket.socket) -> bytes:
    data = b""
    for _ in range(1000):
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    raise AssertionError("the server never closed")


def still_served(port: int) -> None:
    with EchoClient("127.0.0.1", port, timeout=WAIT) as c:
        assert c.ask(b"still there?") == b"STILL THERE?"


@pytest.mark.parametrize("mode", MODES)
def test_each_line_comes_back_upper_cased(lab, mode):
    start, _ = lab
    port = start(mode)
    with EchoClient("127.0.0.1", port, timeout=WAIT) as c:
        assert c.ask(b"hello world") == b"HELLO WORLD"
        assert c.ask("grüße".encode()) == "GRÜSSE".encode()
        assert c.ask(b"x" * p.MAX_LINE) == b"X" * p.MAX_LINE


@pytest.mark.parametrize("mode", MODES)
def test_echo_mode_sends_the_bytes_back_unchanged(lab, mode):
    start, _ = lab
    port = start(mode, reply="echo")
    with EchoClient("127.0.0.1", port, timeout=WAIT) as c:
        assert c.ask(b"Hello \xff\x00 World\r") == b"Hello \xff\x00 World\r"


@pytest.mark.parametrize("mode", MODES)
def test_lines_merged_in_one_send_or_split_byte_by_byte_are_all_answered(lab, mode):
    start, connect = lab
    sock = connect(start(mode))
    sock.sendall(b"one\ntwo\nthree\n")
    assert [read_line(sock) for _ in range(3)] == [b"ONE\n", b"TWO\n", b"THREE\n"]
    for byte in b"four\n":
        sock.sendall(bytes([byte]))
    assert read_line(sock) == b"FOUR\n"


@pytest.mark.parametrize("mode", MODES)
def test_a_half_closed_client_still_gets_its_replies_like_nc_does(lab, mode):
    start, connect = lab
    sock = connect(start(mode))
    sock.sendall(b"last words\n")
    sock.shutdown(socket.SHUT_WR)  # what `nc -N` does at the end of its input
    assert read_to_end(sock) == b"LAST WORDS\n"


def test_in_blocking_mode_a_second_client_waits_for_the_first(lab):
    start, connect = lab
    port = start("blocking")
    first = connect(port)
    first.sendall(b"first\n")
    assert read_line(first) == b"FIRST\n"  # the server is now inside first's handler
    second = connect(port)  # still succeeds: the kernel completes the handshake into the backlog
    second.sendall(b"second\n")
    second.settimeout(STILL_WAITING)
    with pytest.raises(socket.timeout):
        second.recv(1)
    first.close()
    second.settimeout(WAIT)
    assert read_line(second) == b"SECOND\n"


@pytest.mark.parametrize("mode", CONCURRENT)
def test_in_concurrent_modes_a_second_client_is_served_while_the_first_stays(lab, mode):
    start, connect = lab
    port = start(mode)
    first = connect(port)
    first.sendall(b"first\n")
    assert read_line(first) == b"FIRST\n"
    second = connect(port)
    second.sendall(b"second\n")
    assert read_line(second) == b"SECOND\n"
    first.sendall(b"first again\n")
    assert read_line(first) == b"FIRST AGAIN\n"


@pytest.mark.parametrize("mode", MODES)
def test_garbage_comes_back_as_garbage_and_the_connection_goes_on(lab, mode):
    start, connect = lab
    sock = connect(start(mode))
    sock.sendall(b"\x00\xff\xfe\x80 garbage\n")
    assert read_line(sock) == b"\x00\xff\xfe\x80 GARBAGE\n"
    sock.sendall(b"ok\n")
    assert read_line(sock) == b"OK\n"


@pytest.mark.parametrize("mode", MODES)
def test_an_overlong_line_gets_an_error_line_then_the_close(lab, mode):
    start, connect = lab
    port = start(mode)
    sock = connect(port)
    sock.sendall(b"x" * (p.MAX_LINE + 1000))  # no LF, and more than the limit
    reply = read_to_end(sock)
    assert reply.startswith(b"ERROR line-too-long: no end of line within 65536 bytes")
    assert p.as_error(reply.rstrip(b"\n")).code == p.ErrorCode.LINE_TOO_LONG
    sock.close()
    still_served(port)


@pytest.mark.parametrize("mode", MODES)
def test_a_client_that_vanishes_mid_line_does_not_stop_the_server(lab, mode):
    start, connect = lab
    port = start(mode)
    sock = connect(port)
    sock.sendall(b"half a li")
    # SO_LINGER with a zero timeout: close() sends RST, as a crashed peer would
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    still_served(port)


@pytest.mark.parametrize("mode", MODES)
def test_an_idle_client_is_told_why_and_closed(lab, mode):
    start, connect = lab
    port = start(mode, idle_timeout=0.3)
    sock = connect(port)
    reply = read_to_end(sock)  # sends nothing; the server gives up after 0.3 s
    assert reply.startswith(b"ERROR idle-timeout: nothing received for 0.3 s")
    sock.close()
    still_served(port)


@pytest.mark.parametrize("mode", ["blocking", "threaded"])
def test_a_busy_polling_server_answers_lines_that_come_early_late_and_in_pieces(lab, mode):
    start, connect = lab
    port = start(mode, idle_timeout=0.5, busy_poll=0.05)
    sock = connect(port)
    sock.sendall(b"at once\n")  # taken while the thread spins, or before
    assert read_line(sock) == b"AT ONCE\n"
    select.select([], [], [], 0.1)  # past the spin: the thread sleeps in recv() again
    sock.sendall(b"la")
    sock.sendall(b"ter\nand more\n")
    assert read_line(sock) + read_line(sock) == b"LATER\nAND MORE\n"
    reply = read_to_end(sock)  # then silence: the idle timeout still holds
    assert reply.startswith(b"ERROR idle-timeout: nothing received for 0.5 s")


def test_busy_polling_is_refused_for_selectors_which_waits_for_many_sockets(capsys):
    with pytest.raises(ValueError, match="busy polling is for the blocking and threaded modes"):
        echo_server.create_server("selectors", ("127.0.0.1", 0), busy_poll=0.01)
    assert echo_server.main(server_args("--mode", "threaded", "selectors", "--busy-poll", "5")) == 2
    assert "for the blocking and threaded modes only" in capsys.readouterr().out


@pytest.mark.parametrize("mode", CONCURRENT)
def test_a_client_that_never_reads_its_replies_does_not_stall_the_others(lab, mode):
    start, connect = lab
    port = start(mode)
    greedy = connect(port)
    greedy.settimeout(1.0)
    lines = b"flood\n" * 100_000
    with pytest.raises(socket.timeout):
        for _ in range(50):  # bounded; the buffers fill up long before 30 MB
            greedy.sendall(lines)
    still_served(port)


# --- the client's entry point ----------------------------------------------------


def client_args(port: int, *words: str, timeout: float = WAIT) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    echo_client.add_arguments(parser)
    return parser.parse_args(["--host", "127.0.0.1", "--port", str(port), "--timeout", str(timeout), *words])


def test_one_shot_sends_the_words_as_one_line(lab, capsysbinary):
    start, _ = lab
    port = start("threaded")
    assert echo_client.main(client_args(port, "hello", "world")) == 0
    assert capsysbinary.readouterr().out == b"HELLO WORLD\n"


def test_lines_from_stdin_are_sent_one_by_one_and_empty_ones_skipped(lab, capsysbinary, monkeypatch):
    start, _ = lab
    port = start("selectors")
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"a\n\nexit\nb c\n")))
    assert echo_client.main(client_args(port)) == 0
    assert capsysbinary.readouterr().out == b"A\nEXIT\nB C\n"


def test_a_line_over_the_limit_is_not_sent_and_the_exit_status_says_so(lab, capsysbinary):
    start, _ = lab
    port = start("threaded")
    assert echo_client.main(client_args(port, "x" * (p.MAX_LINE + 1))) == 1
    assert b"not sent" in capsysbinary.readouterr().err


def test_no_server_is_a_clear_error_and_exit_status_2(loopback_port, capsys):
    assert echo_client.main(client_args(loopback_port)) == 2
    assert f"connection to 127.0.0.1:{loopback_port} failed" in capsys.readouterr().err


def test_an_error_line_from_the_server_raises_echo_error(lab):
    start, _ = lab
    port = start("selectors", idle_timeout=0.3)
    with EchoClient("127.0.0.1", port, timeout=WAIT) as c:
        readable, _, _ = select.select([c.conn.sock], [], [], WAIT)  # silent until the server gives up
        assert readable
        with pytest.raises(EchoError) as raised:
            c.ask(b"too late")
    assert raised.value.code == p.ErrorCode.IDLE_TIMEOUT


# --- the server's entry point ----------------------------------------------------


def server_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    echo_server.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_several_modes_can_be_chosen_at_once():
    args = server_args("--mode", "blocking", "threaded", "selectors", "--reply", "echo")
    assert args.mode == ["blocking", "threaded", "selectors"] and args.reply == "echo"
    assert server_args().mode == ["threaded"] and server_args().port == 7007


def test_a_busy_port_is_a_clear_error_not_a_traceback(capsys):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        assert echo_server.main(server_args("--host", "127.0.0.1", "--port", str(port), "--mode", "selectors")) == 2
    assert "cannot listen on 127.0.0.1 port" in capsys.readouterr().out


def test_a_mode_given_twice_is_refused(capsys):
    assert echo_server.main(server_args("--mode", "blocking", "blocking")) == 2
    assert "each mode may be given once" in capsys.readouterr().out


class _BuggySession(echo_server.EchoSession):
    def received(self, data: bytes) -> bytes:
        if b"boom" in data:
            raise RuntimeError("a bug in the handler")
        return super().received(data)


@pytest.mark.parametrize("mode", MODES)
def test_a_bug_in_the_handler_loses_one_client_not_the_server(mode, run_in_thread):
    server = MODES_BY_NAME[mode](("127.0.0.1", 0), lambda peer: _BuggySession(peer), 10.0)
    run_in_thread(server.serve_forever, 0.05)
    try:
        port = server.server_address[1]
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
            sock.sendall(b"boom\n")
            assert read_to_end(sock) == b""  # closed, without a reply
        still_served(port)
    finally:
        server.shutdown()
        server.server_close()
