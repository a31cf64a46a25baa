"""The socket-state watcher: only changes kept, the last state always taken."""

from __future__ import annotations

import shutil

import pytest

from socklab.inspector.sockets import SocketWatcher, ss_snapshot

LISTEN = "tcp LISTEN 0 64 0.0.0.0:2121 0.0.0.0:*"
ESTAB = "tcp ESTAB 0 0 10.99.0.10:2121 10.99.0.20:40000"
TIME_WAIT = "tcp TIME-WAIT 0 0 10.99.0.10:2121 10.99.0.20:40000"


def scripted(*snapshots):
    """A snapshot function that returns these in turn, then the last one for ever."""
    queue = list(snapshots)
    return lambda: queue.pop(0) if len(queue) > 1 else queue[0]


def test_only_changes_are_kept():
    watcher = SocketWatcher(scripted((LISTEN,), (LISTEN,), (LISTEN, ESTAB), (LISTEN, ESTAB), (LISTEN, TIME_WAIT)))
    for _ in range(5):
        watcher.sample()
    assert [lines for _, lines in watcher.changes] == [(LISTEN,), (LISTEN, ESTAB), (LISTEN, TIME_WAIT)]
    report = watcher.report()
    assert "TIME-WAIT" in report and report.count("LISTEN") == 3


def test_recording_stops_at_the_limit_and_says_so():
    snapshots = [(f"tcp ESTAB 0 0 10.0.0.1:1 10.0.0.2:{port}",) for port in range(10)]
    watcher = SocketWatcher(scripted(*snapshots), max_changes=3)
    for _ in range(10):
        watcher.sample()
    assert len(watcher.changes) == 3 and watcher.truncated
    assert "stopped recording after 3 changes" in watcher.report()


def test_a_failing_ss_skips_the_sample():
    def broken():
        raise OSError("no ss here")

    watcher = SocketWatcher(broken)
    watcher.sample()
    assert watcher.changes == []


def test_start_and_stop_take_the_final_state():
    watcher = SocketWatcher(scripted((LISTEN,), (LISTEN, ESTAB)), interval=0.01).start()
    watcher.stop()
    assert watcher.changes[-1][1] == (LISTEN, ESTAB)


@pytest.mark.skipif(not shutil.which("ss"), reason="iproute2's ss is not installed on this host")
def test_real_ss_lists_a_listening_socket(loopback_port):
    import socket

    with socket.create_server(("127.0.0.1", loopback_port)):
        lines = ss_snapshot()
    assert any("LISTEN" in line and f"127.0.0.1:{loopback_port}" in line for line in lines)
