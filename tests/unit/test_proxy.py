"""The impairing proxy on loopback: in-process servers behind it, a client in front.

Every wait is bounded by a socket timeout or a loop count; the only timing
assertion is a lower bound (a delay cannot make things faster).
"""

from __future__ import annotations

import argparse
import socket
import socketserver
import threading
import time

import pytest

from socklab.inspector import proxy as px
from socklab.inspector.impair import parse
from socklab.udp.server import UdpEchoServer

TIMEOUT = 5.0
BLOB = bytes(range(256)) * 40  # 10240 bytes


class _Servers(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False


class Echo(socketserver.BaseRequestHandler):
    """Echoes each recv() as one write, until EOF."""

    def handle(self):
        self.request.settimeout(TIMEOUT)
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except OSError:
            pass


class Blob(socketserver.BaseRequestHandler):
    """Sends BLOB in one sendall, then waits for the client to close."""

    def handle(self):
        self.request.settimeout(TIMEOUT)
        try:
            self.request.sendall(BLOB)
            while self.request.recv(65536):
                pass
        except OSError:
            pass


class Sink(socketserver.BaseRequestHandler):
    """Reads until EOF, then says how much it got: answers only after a half-close."""

    def handle(self):
        self.request.settimeout(TIMEOUT)
        total = 0
        while data := self.request.recv(65536):
            total += len(data)
        self.request.sendall(f"got {total}".encode())


@pytest.fixture
def behind_proxy(run_in_thread):
    """start(server, proxy_class, spec, seed) -> the proxy's address; both stopped at teardown."""
    started = []

    def start(server, proxy_class, spec, seed):
        run_in_thread(server.serve_forever, 0.05)
        proxy = proxy_class(("127.0.0.1", 0), server.server_address, parse(spec, seed))
        run_in_thread(proxy.serve_forever, 0.05)
        started.extend([proxy, server])
        return proxy.server_address

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


@pytest.fixture
def tcp(behind_proxy):
    """start(handler, spec) -> the proxy's address, with a server of that handler behind it."""
    return lambda handler, spec="", seed=1: behind_proxy(_Servers(("127.0.0.1", 0), handler), px.TcpProxy, spec, seed)


@pytest.fixture
def udp(behind_proxy):
    """start(spec, seed) -> the proxy's address, with a UDP echo server behind it."""
    return lambda spec="", seed=50: behind_proxy(UdpEchoServer(("127.0.0.1", 0)), px.UdpProxy, spec, seed)


def connect(address, timeout=TIMEOUT) -> socket.socket:
    return socket.create_connection(address, timeout=timeout)


def read_all(sock: socket.socket, limit: int = 10_000) -> tuple[list[bytes], BaseException | None]:
    """Every recv() until EOF or an error (at most ``limit`` of them)."""
    chunks = []
    for _ in range(limit):
        try:
            data = sock.recv(65536)
        except OSError as exc:
            return chunks, exc
        if not data:
            return chunks, None
        chunks.append(data)
    raise AssertionError("too many recv() calls")


# --- TCP -------------------------------------------------------------------------


def test_no_impairment_relays_unchanged(tcp):
    with connect(tcp(Echo)) as sock:
        payload = BLOB * 10
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        chunks, error = read_all(sock)
    assert error is None and b"".join(chunks) == payload


def test_slicing_cuts_one_write_into_small_recvs(tcp):
    with connect(tcp(Blob, "slice=1000:20ms,dir=to-client")) as sock:
        chunks = []
        while sum(map(len, chunks)) < len(BLOB) and len(chunks) < 1000:
            chunks.append(sock.recv(65536))
            assert chunks[-1], "EOF before the whole blob"
    assert b"".join(chunks) == BLOB
    assert max(map(len, chunks)) <= 1000
    assert len(chunks) >= 11  # 10240 bytes in 1000-byte segments


class TwoWrites(socketserver.BaseRequestHandler):
    """Sends b"a" and b"b" as two writes 50 ms apart, then waits for the client to close."""

    def handle(self):
        self.request.settimeout(TIMEOUT)
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.request.sendall(b"a")
            time.sleep(0.05)  # so that the proxy reads them as two writes
            self.request.sendall(b"b")
            while self.request.recv(65536):
                pass
        except OSError:
            pass


def test_slices_of_two_writes_are_a_gap_apart_too(tcp):
    # A header and a body sent as two writes must not arrive in one recv(): "one byte at a
    # time" holds across writes, not only within one.
    with connect(tcp(TwoWrites, "slice=1:200ms,dir=to-client")) as sock:
        assert sock.recv(65536) == b"a"
        first = time.monotonic()
        assert sock.recv(65536) == b"b"
        assert time.monotonic() - first >= 0.15


def test_merging_makes_small_writes_arrive_together(tcp):
    messages = [f"message {i}\n".encode() for i in range(5)]
    with connect(tcp(Echo, "merge=500ms")) as sock:
        for message in messages:
            sock.sendall(message)
            time.sleep(0.01)  # without the proxy: one recv each
        first = sock.recv(65536)
        sock.shutdown(socket.SHUT_WR)
        rest, error = read_all(sock)
    assert first == b"".join(messages)
    assert error is None and rest == []


class Merged(socketserver.BaseRequestHandler):
    """Sends three echo lines in one write, as a server under load might."""

    def handle(self):
        self.request.settimeout(TIMEOUT)
        self.request.sendall(b"ONE\nTWO\nTHREE\n")
        while self.request.recv(65536):
            pass


def test_frames_sends_each_message_alone(behind_proxy):
    """frames=: the tutorials' network: one recv, one message, even when the sender merged them."""
    server = _Servers(("127.0.0.1", 0), Merged)
    address = behind_proxy(server, lambda a, t, i: px.TcpProxy(a, t, i, "echo"), "frames=500ms", 1)  # wide: a loaded machine may be slow to recv()
    with connect(address) as sock:
        chunks = [sock.recv(65536) for _ in range(3)]
    assert chunks == [b"ONE\n", b"TWO\n", b"THREE\n"]


def test_frames_needs_the_exercise():
    with pytest.raises(px.ImpairmentError, match="--exercise"):
        px.TcpProxy(("127.0.0.1", 0), ("127.0.0.1", 9), parse("frames=10ms"))


def test_reset_after_n_bytes(tcp):
    with connect(tcp(Blob, "reset=4000")) as sock:
        chunks, error = read_all(sock)
    assert sum(map(len, chunks)) == 4000
    assert b"".join(chunks) == BLOB[:4000]
    assert error is None or isinstance(error, ConnectionResetError)


def test_reset_reaches_the_client_as_rst(tcp):
    with connect(tcp(Blob, "reset=0")) as sock:
        chunks, error = read_all(sock)
    assert chunks == []
    assert isinstance(error, ConnectionResetError)


def test_blackhole_makes_the_client_time_out(tcp):
    with connect(tcp(Echo, "blackhole=10"), timeout=1.0) as sock:
        sock.sendall(b"x" * 100)
        chunks, error = read_all(sock)
    assert isinstance(error, socket.timeout)
    assert sum(map(len, chunks)) <= 10


def test_half_close_propagates(tcp):
    with connect(tcp(Sink)) as sock:
        sock.sendall(b"y" * 3000)
        sock.shutdown(socket.SHUT_WR)  # the sink answers only once it sees our FIN
        chunks, error = read_all(sock)
    assert error is None and b"".join(chunks) == b"got 3000"


def test_delay_is_added_each_way(tcp):
    with connect(tcp(Echo, "delay=100ms")) as sock:
        start = time.monotonic()
        sock.sendall(b"ping")
        assert sock.recv(100) == b"ping"
        assert time.monotonic() - start >= 0.19


def test_rate_limit_still_delivers_everything(tcp):
    with connect(tcp(Blob, "rate=400kbit,dir=to-client")) as sock:  # 10 KB at 50 kB/s: about 0.2 s
        start = time.monotonic()
        data = b""
        for _ in range(1000):
            if len(data) >= len(BLOB):
                break
            data += sock.recv(65536)
        assert data == BLOB
        assert time.monotonic() - start >= 0.1


def test_unreachable_server_resets_the_client(run_in_thread, loopback_port):
    proxy = px.TcpProxy(("127.0.0.1", 0), ("127.0.0.1", loopback_port), parse(""))
    run_in_thread(proxy.serve_forever, 0.05)
    try:
        with connect(proxy.server_address) as sock:
            chunks, error = read_all(sock)
        assert chunks == [] and isinstance(error, ConnectionResetError)
    finally:
        proxy.shutdown()
        proxy.server_close()


# --- UDP -------------------------------------------------------------------------


def udp_exchange(address, count: int, gap: float = 0.0, wait: float = 0.5) -> list[int]:
    """Send datagrams 0..count-1, then collect the replies until ``wait`` passes quietly."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(wait)
        for n in range(count):
            sock.sendto(str(n).encode(), address)
            if gap:
                time.sleep(gap)
        replies = []
        for _ in range(count * 4 + 1):
            try:
                replies.append(int(sock.recv(100)))
            except socket.timeout:
                return replies
    raise AssertionError("more replies than datagrams could explain")


def test_udp_passes_everything_without_impairment(udp):
    assert sorted(udp_exchange(udp(), 10)) == list(range(10))


def test_udp_loss_is_the_same_on_every_run(udp):
    first = udp_exchange(udp("loss=0.3", seed=50), 20)
    second = udp_exchange(udp("loss=0.3", seed=50), 20)
    assert sorted(first) == sorted(second)
    assert 0 < len(first) < 20
    other = udp_exchange(udp("loss=0.3", seed=51), 20)
    assert sorted(other) != sorted(first)


def test_udp_duplicates(udp):
    replies = udp_exchange(udp("dup=1,dir=to-server"), 5)
    assert sorted(replies) == sorted(list(range(5)) * 2)


def test_udp_reorder(udp):
    replies = udp_exchange(udp("reorder=0.3,dir=to-server", seed=3), 12, gap=0.02, wait=2.0)
    assert sorted(replies) == list(range(12))  # nothing lost: held back, then sent
    assert replies != sorted(replies)


def test_udp_delay(udp):
    address = udp("delay=100ms")
    start = time.monotonic()
    assert udp_exchange(address, 1, wait=1.0) == [0]
    assert time.monotonic() - start >= 0.19


def test_udp_proxy_refuses_tcp_settings():
    with pytest.raises(ValueError, match="TCP only"):
        px.UdpProxy(("127.0.0.1", 0), ("127.0.0.1", 9), parse("slice=8"))


# --- command line ----------------------------------------------------------------


def parse_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    px.add_arguments(parser)
    return parser.parse_args(argv)


def test_command_line_builds_the_impairment():
    args = parse_args("--listen", ":17007", "--to", "127.0.0.1:7007", "--tcp", "--scenario", "slicer",
                      "--impair", "delay=5ms", "--seed", "7")
    imp = px.impairment_from(args)
    assert args.listen == ("0.0.0.0", 17007) and args.transport == "tcp"
    assert imp.slice_size == 32 and imp.delay == pytest.approx(0.005) and imp.seed == 7


def test_command_line_picks_and_logs_a_seed(capsys):
    assert px.impairment_from(parse_args("--listen", ":1", "--to", "h:2", "--udp")).seed >= 0
    args = parse_args("--listen", "127.0.0.1:0", "--to", "127.0.0.1:9", "--udp", "--impair", "loss=2")
    assert px.main(args) == 2
    assert "loss=2" in capsys.readouterr().out


def test_bad_address():
    with pytest.raises(SystemExit):
        parse_args("--listen", "nowhere", "--to", "127.0.0.1:9", "--tcp")


def test_main_stops_on_sigterm(tmp_path, loopback_port):
    # The real entry point in a child process: it must stop cleanly on SIGTERM.
    import signal
    import subprocess
    import sys

    record = tmp_path / "impairment.txt"
    child = subprocess.Popen([sys.executable, "-c", "import sys; from socklab.inspector import proxy as p;"
                              "import argparse; a = argparse.ArgumentParser(); p.add_arguments(a);"
                              "sys.exit(p.main(a.parse_args(sys.argv[1:])))",
                              "--listen", f"127.0.0.1:{loopback_port}", "--to", "127.0.0.1:9", "--tcp",
                              "--scenario", "merger", "--seed", "5", "--record", str(record)],
                             stdout=subprocess.PIPE, text=True)
    try:
        lines = []
        for _ in range(10):
            lines.append(child.stdout.readline())
            if "listening on" in lines[-1]:
                break
        child.send_signal(signal.SIGTERM)
        out, _ = child.communicate(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
    assert child.returncode == 0
    text = "".join(lines) + out
    assert "proxy: impairment merger" in text and "--seed 5" in text and "stopping" in text
    assert "--seed 5" in record.read_text()


def test_server_close_resets_live_connections(run_in_thread):
    server = _Servers(("127.0.0.1", 0), Echo)
    run_in_thread(server.serve_forever, 0.05)
    proxy = px.TcpProxy(("127.0.0.1", 0), server.server_address, parse(""))
    thread = threading.Thread(target=proxy.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        with connect(proxy.server_address) as sock:
            sock.sendall(b"hi")
            assert sock.recv(10) == b"hi"
            proxy.shutdown()
            proxy.server_close()
            chunks, error = read_all(sock)
        assert chunks == [] and isinstance(error, ConnectionResetError)
    finally:
        thread.join(timeout=5)
        server.shutdown()
        server.server_close()
