"""The server plumbing every TCP exercise shares: how a connection's end is reported."""

from __future__ import annotations

import logging
import socket

import pytest

from socklab.framing import LocalProtocolError, RemoteProtocolError
from socklab.server import LabHandler, LabTCPServer, why_timed_out


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
