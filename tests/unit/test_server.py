"""The server plumbing every TCP exercise shares: how a connection's end is reported."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest

from socklab.framing import LocalProtocolError, RemoteProtocolError
from socklab.server import LabHandler, LabTCPServer, logs_as, why_timed_out

log = logging.getLogger("socklab")


@pytest.fixture
def tcp_pair():
    """Two connected TCP sockets on loopback (a real send queue, unlike socketpair)."""
    listener = socket.create_server(("127.0.0.1", 0))
    a = socket.create_connection(listener.getsockname())
    b, _ = listener.accept()
    listener.close()
    yield a, b
    a.close()
    b.close()


def test_a_quiet_peer_is_said_to_have_sent_nothing(tcp_pair):
    ours, _ = tcp_pair
    assert why_timed_out(ours, 4) == "sent nothing for 4 s"


def test_a_peer_that_stops_reading_is_told_apart_by_the_send_queue(tcp_pair):
    ours, theirs = tcp_pair
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ours.setblocking(False)
    sent = 0
    for _ in range(10_000):  # bounded: a few MB at most before the queues fill
        try:
            sent += ours.send(bytes(65536))
        except BlockingIOError:
            break
    assert sent > 0
    reason = why_timed_out(ours, 4)
    assert reason.startswith("read nothing of our replies for 4 s (") and "bytes wait in the send queue" in reason


@pytest.mark.parametrize("error, level, words", [
    (LocalProtocolError("file shrank while being sent"), logging.ERROR, "the fault is ours: file shrank"),
    (RemoteProtocolError("unknown frame kind"), logging.WARNING, "broke the protocol: unknown frame kind"),
])
def test_who_broke_the_protocol_is_reported_right(caplog, run_in_thread, error, level, words):
    class Failing(LabHandler):
        def serve(self) -> None:
            raise error

    server = LabTCPServer(("127.0.0.1", 0), Failing, idle_timeout=5)
    run_in_thread(server.serve_forever, 0.05)
    try:
        with caplog.at_level(logging.INFO, logger="socklab"):
            with socket.create_connection(server.server_address) as client:
                client.settimeout(5)
                # The handler logs before the server closes the socket, so
                # by the end of stream the line is there.
                assert client.recv(1) == b""
        matching = [r for r in caplog.records if words in r.getMessage()]
        assert matching and matching[0].levelno == level, caplog.text
    finally:
        server.shutdown()
        server.server_close()


class Echo(LabHandler):
    def serve(self) -> None:
        while data := self.request.recv(1024):
            self.request.sendall(data)


def _served(address) -> bool:
    with socket.create_connection(address, timeout=5) as client:
        client.sendall(b"ping")
        try:
            return client.recv(4) == b"ping"
        except ConnectionResetError:
            return False


def test_a_connection_over_the_cap_is_refused_and_the_next_served_once_one_ends(caplog, run_in_thread):
    class Capped(LabTCPServer):
        max_connections = 2

    server = Capped(("127.0.0.1", 0), Echo, idle_timeout=5)
    run_in_thread(server.serve_forever, 0.05)
    try:
        with caplog.at_level(logging.INFO, logger="socklab"):
            holders = [socket.create_connection(server.server_address, timeout=5) for _ in range(2)]
            for holder in holders:  # both have their thread
                holder.sendall(b"x")
                assert holder.recv(1) == b"x"
            assert not _served(server.server_address)
            assert "refused: 2 connections are open, the limit" in caplog.text
            holders.pop().close()
            deadline = time.monotonic() + 5
            while not _served(server.server_address):  # the slot frees when the handler's thread ends
                assert time.monotonic() < deadline, caplog.text
                time.sleep(0.05)
            holders.pop().close()
        assert "Traceback" not in caplog.text and "unexpected error" not in caplog.text
    finally:
        server.shutdown()
        server.server_close()


def test_no_thread_for_a_connection_is_a_refusal_not_a_crash(caplog, run_in_thread, monkeypatch):
    # What the container's pids limit does to ThreadingMixIn: Thread.start() raises.
    class OneAtATime(LabTCPServer):
        max_connections = 1  # so the next client is served only if the refusal gave its slot back

    server = OneAtATime(("127.0.0.1", 0), Echo, idle_timeout=5)
    run_in_thread(server.serve_forever, 0.05)
    try:
        with caplog.at_level(logging.INFO, logger="socklab"):
            real_start = threading.Thread.start

            def no_thread(thread):
                if getattr(thread._target, "__name__", "") == "process_request_thread":
                    raise RuntimeError("can't start new thread")
                real_start(thread)

            monkeypatch.setattr(threading.Thread, "start", no_thread)
            assert not _served(server.server_address)
            assert "refused: no thread to serve it (can't start new thread)" in caplog.text
            monkeypatch.undo()
            assert _served(server.server_address)
        assert "Traceback" not in caplog.text and "unexpected error" not in caplog.text
    finally:
        server.shutdown()
        server.server_close()


def test_log_lines_from_many_threads_are_all_written_in_order_by_the_time_main_returns(capsys):
    @logs_as("server")
    def main() -> int:
        def talk(who: int) -> None:
            for n in range(500):
                log.info("thread %d line %d", who, n)

        threads = [threading.Thread(target=talk, args=(who,)) for who in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
        log.warning("done")
        return 7

    assert main() == 7
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2001 and lines[-1] == "server: done"
    for who in range(4):  # each thread's lines whole, and in the order it logged them
        assert [line for line in lines if line.startswith(f"server: thread {who} ")] == \
            [f"server: thread {who} line {n}" for n in range(500)]
