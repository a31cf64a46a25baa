"""The http exercise's server and client in one process, on loopback.

Our server against raw sockets (every error status, keep-alive, escapes,
timeouts) and against Python's http.client; our client against our server,
against Python's http.server, and against the hello world of step 1. Every
socket has a timeout and every loop a bound, so a bug fails a test instead of
hanging it; nothing asserts how long anything took.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import http.server
import io
import os
import select
import socket
import struct
from functools import partial

import pytest

from socklab.framing import NEED_DATA
from socklab.http import client as hc
from socklab.http import hello
from socklab.http import protocol as p
from socklab.http.server import HttpServer, write_demo_site
from socklab.samples import write_sample

BIG = 3 * (1 << 20) + 7  # several CHUNKs, and not a multiple of one
TIMEOUT = 5.0


@pytest.fixture
def site(tmp_path):
    """A served folder, a secret beside it, and a link inside pointing at the secret."""
    root = tmp_path / "site"
    root.mkdir()
    write_demo_site(root)
    write_sample(root / "big.bin", BIG)
    (root / "sub").mkdir()
    (root / "sub" / "index.html").write_text("<p>sub</p>\n")
    (root / "empty-dir").mkdir()
    (root / "a b.txt").write_text("spaced\n")
    (tmp_path / "secret").write_text("do not serve\n")
    (root / "link").symlink_to(tmp_path)
    return root


def start(run_in_thread, root, **kwargs) -> HttpServer:
    srv = HttpServer(("127.0.0.1", 0), str(root), **{"idle_timeout": TIMEOUT, "request_timeout": TIMEOUT, **kwargs})
    run_in_thread(srv.serve_forever, 0.05)
    return srv


@pytest.fixture
def server(site, run_in_thread):
    srv = start(run_in_thread, site)
    yield srv
    srv.shutdown()
    srv.server_close()


class Raw:
    """A client that sends exactly the bytes it is given and decodes what comes back."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.decoder = p.ResponseDecoder()

    def send(self, data: bytes) -> Raw:
        self.sock.sendall(data)
        return self

    def response(self, method: str = "GET") -> tuple[p.Response, bytes]:
        self.decoder.expect(method)
        response, body = None, b""
        for _ in range(10_000):
            event = self.decoder.next_event()
            if event is NEED_DATA:
                data = self.sock.recv(1 << 16)
                self.decoder.feed(data) if data else self.decoder.feed_eof()
            elif isinstance(event, p.Response):
                response = event
            elif isinstance(event, p.Data):
                body += event.data
            else:
                return response, body
        raise AssertionError("no whole response")

    def closed_by_server(self) -> bool:
        return self.sock.recv(1) == b""

    def close(self) -> None:
        self.sock.close()


def raw(server) -> Raw:
    return Raw(server.server_address[1])


def get(target: str, version: str = "HTTP/1.1", extra: str = "", method: str = "GET") -> bytes:
    return f"{method} {target} {version}\r\nHost: localhost\r\n{extra}\r\n".encode()


# --- our server, raw bytes ------------------------------------------------------


def test_keep_alive_serves_several_requests_on_one_connection_until_close(server, site):
    c = raw(server)
    r1, b1 = c.send(get("/")).response()
    r2, b2 = c.send(get("/about.txt")).response()
    r3, b3 = c.send(get("/sub/", extra="Connection: close\r\n")).response()
    assert (r1.status, r2.status, r3.status) == (200, 200, 200)
    assert b1 == (site / "index.html").read_bytes() and r1.headers.get("Content-Type") == "text/html"
    assert b2 == (site / "about.txt").read_bytes() and r2.headers.get("Content-Length") == str(len(b2))
    assert b3 == b"<p>sub</p>\n" and r3.headers.get("Connection") == "close"
    assert c.closed_by_server()
    c.close()


def test_pipelined_requests_in_one_segment_get_their_answers_in_order(server):
    c = raw(server).send(get("/about.txt") + get("/nope") + get("/", method="HEAD", extra="Connection: close\r\n"))
    statuses = [c.response()[0].status, c.response()[0].status, c.response("HEAD")[0].status]
    assert statuses == [200, 404, 200]
    assert c.closed_by_server()


def test_head_sends_the_headers_of_a_get_and_no_body(server, site):
    c = raw(server)
    head, body = c.send(get("/big.bin", method="HEAD")).response("HEAD")
    after, _ = c.send(get("/about.txt")).response()  # nothing of a body sits in between
    assert head.status == 200 and body == b"" and head.headers.get("Content-Length") == str(BIG)
    assert head.headers.get("Content-Type") == "application/octet-stream" and after.status == 200


def test_http_1_0_closes_unless_keep_alive_is_asked_for(server):
    c = raw(server)
    response, _ = c.send(get("/", "HTTP/1.0", "Connection: keep-alive\r\n")).response()
    assert response.headers.get("Connection") == "keep-alive"
    response, _ = c.send(get("/", "HTTP/1.0")).response()
    assert response.status == 200 and response.headers.get("Connection") == "close"
    assert c.closed_by_server()


@pytest.mark.parametrize(
    "data, status",
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"\x00\xff\xfe\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n", 413),
        (b"GET /" + b"a" * (p.MAX_REQUEST_LINE + 10) + b" HTTP/1.1\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * (p.MAX_HEADER_LINE + 10) + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X: y\r\n" * (p.MAX_HEADERS + 1) + b"\r\n", 431),
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
    ],
)
def test_a_broken_request_is_answered_then_the_connection_closed(server, data, status):
    c = raw(server).send(data)
    response, body = c.response()
    assert response.status == status and response.headers.get("Connection") == "close"
    assert body.startswith(str(status).encode())
    assert c.closed_by_server()


def test_413_arrives_even_while_the_client_is_still_sending_the_body(server):
    # The server answers from the head and drains the rest: without that, its
    # close() with unread bytes would send RST and the client could lose the 413.
    c = raw(server).send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n" + b"x" * 300_000)
    assert c.response()[0].status == 413


@pytest.mark.parametrize(
    "target, status",
    [
        ("/nope.html", 404),
        ("/empty-dir", 404),  # a folder without index.html: no listing
        ("/sub/missing/deeper", 404),
        ("/about.txt/x", 404),  # a file is not a folder
        ("/../secret", 403),
        ("/%2e%2e/secret", 403),
        ("/%2E%2E%2Fsecret", 403),
        ("/sub/%2e%2e/%2e%2e/secret", 403),
        ("//etc/passwd", 403),
        ("/%2Fetc/passwd", 403),
        ("/link/secret", 403),  # a symbolic link that leads outside
        ("/a%00b", 403),
        ("/%ff", 400),  # percent-encoded bytes that are not UTF-8
        ("*", 400),
    ],
)
def test_refusals_that_keep_the_connection(server, target, status):
    c = raw(server)
    response, body = c.send(get(target)).response()
    assert response.status == status and b"do not serve" not in body
    assert c.send(get("/about.txt")).response()[0].status == 200


def test_405_says_which_methods_are_allowed_and_a_small_body_is_skipped(server):
    c = raw(server)
    response, _ = c.send(b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd").response()
    assert response.status == 405 and response.headers.get("Allow") == "GET, HEAD"
    assert c.send(get("/about.txt")).response()[0].status == 200  # the body did not become a request


def test_names_are_percent_decoded_and_queries_ignored(server):
    c = raw(server)
    assert c.send(get("/a%20b.txt?x=1#frag")).response()[1] == b"spaced\n"
    assert c.send(get("http://localhost/about.txt")).response()[0].status == 200  # absolute-form


def test_an_idle_client_is_disconnected(site, run_in_thread):
    srv = start(run_in_thread, site, idle_timeout=0.2)
    try:
        assert raw(srv).closed_by_server()
    finally:
        srv.shutdown()
        srv.server_close()


def test_a_slow_client_gets_408_even_if_it_never_goes_quiet_for_long(site, run_in_thread):
    srv = start(run_in_thread, site, idle_timeout=0.2, request_timeout=0.5)
    try:
        c = raw(srv).send(b"GET / HTTP/1.1\r\n")
        for _ in range(200):  # a byte every 50 ms, never finishing the head: the idle timeout alone would wait forever
            if select.select([c.sock], [], [], 0.05)[0]:
                break  # the server has answered
            c.send(b"X")
        assert c.response()[0].status == 408
    finally:
        srv.shutdown()
        srv.server_close()


def test_the_server_survives_vanishing_and_garbage_clients(server):
    for _ in range(3):
        gone = raw(server).send(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        # SO_LINGER 0: close() sends RST, like a client that crashed mid-download
        gone.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        gone.close()
        raw(server).send(os.urandom(2000) + b"\r\n\r\n").close()
        half = raw(server).send(b"GET / HT")
        half.close()
    assert raw(server).send(get("/about.txt")).response()[0].status == 200


# --- interop: http.client against our server ------------------------------------


def test_python_http_client_downloads_over_one_connection(server, site):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=TIMEOUT)
    try:
        conn.request("GET", "/big.bin")
        big = conn.getresponse()
        digest = hashlib.sha256()
        while chunk := big.read(1 << 16):
            digest.update(chunk)
        first_socket = conn.sock
        conn.request("HEAD", "/index.html")
        head = conn.getresponse()
        head.read()
        conn.request("GET", "/nope")
        missing = conn.getresponse()
        missing_body = missing.read()
        assert conn.sock is first_socket  # keep-alive: no reconnection happened
    finally:
        conn.close()
    assert big.status == 200 and digest.hexdigest() == hashlib.sha256((site / "big.bin").read_bytes()).hexdigest()
    assert head.status == 200 and int(head.getheader("Content-Length")) == (site / "index.html").stat().st_size
    assert missing.status == 404 and b"no such file" in missing_body


# --- our client ---------------------------------------------------------------


def client_args(port: int, *targets: str, **options) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    hc.add_arguments(parser)
    argv = ["--host", "127.0.0.1", "--port", str(port), "--timeout", str(TIMEOUT)]
    for name, value in options.items():
        if value is None:
            continue
        flag = "--" + name.replace("_", "-")
        argv += [flag] if value is True else [flag, str(value)]
    return parser.parse_args(argv + list(targets))


def run_client(port: int, *targets: str, **options) -> tuple[int, str]:
    out = io.BytesIO()
    status = hc.run(client_args(port, *targets, **options), out)
    return status, out.getvalue().decode("utf-8", "replace")


def test_our_client_fetches_several_paths_on_one_connection(server, site):
    status, out = run_client(server.server_address[1], "/", "/about.txt", "/nope", expect=None)
    assert status == 0
    assert out.count("* connected") == 1 and out.count("* reusing") == 2
    assert "< HTTP/1.1 404 Not Found" in out and (site / "about.txt").read_text() in out
    assert "> Connection: close" in out and out.rstrip().endswith("* 3 requests on 1 connection")


def test_our_client_exit_status_follows_fail_and_expect(server):
    port = server.server_address[1]
    assert run_client(port, "/nope", fail=True)[0] == 1
    assert run_client(port, "/nope", expect=404)[0] == 0
    assert run_client(port, "/", expect=404)[0] == 1
    status, out = run_client(port, "/", method="DELETE", expect=405)
    assert status == 0 and "< Allow: GET, HEAD" in out


def test_our_client_head_and_digest(server, site):
    port = server.server_address[1]
    status, out = run_client(port, "/big.bin", head=True, fail=True)
    assert status == 0 and f"< Content-Length: {BIG}" in out and "(body:" not in out
    status, out = run_client(port, "/big.bin", digest=True, fail=True)
    assert f"(body: {BIG} bytes, sha256 {hashlib.sha256((site / 'big.bin').read_bytes()).hexdigest()})" in out


def test_our_client_body_only_keeps_stdout_for_the_bodies(server, site, capsys):
    status, out = run_client(server.server_address[1], "/about.txt", "/about.txt", body_only=True, fail=True)
    assert status == 0 and out == (site / "about.txt").read_text() * 2
    report = capsys.readouterr().err
    assert "> GET /about.txt HTTP/1.1" in report and "* 2 requests on 1 connection" in report


def test_our_client_main_reports_a_refused_connection(loopback_port, capsys):
    assert hc.main(client_args(loopback_port, "/")) == 2
    assert "error: HTTP exchange with 127.0.0.1:" in capsys.readouterr().err


def test_our_client_reports_a_server_that_breaks_the_protocol(capsys, run_in_thread):
    listener = socket.create_server(("127.0.0.1", 0))

    def lie():
        conn, _ = listener.accept()
        with conn, listener:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")

    run_in_thread(lie)
    assert hc.main(client_args(listener.getsockname()[1], "/")) == 2
    assert "still to come" in capsys.readouterr().err


@pytest.mark.parametrize("protocol_version, connections", [("HTTP/1.0", 3), ("HTTP/1.1", 1)])
def test_our_client_against_python_http_server(site, run_in_thread, protocol_version, connections):
    handler = type("Handler", (http.server.SimpleHTTPRequestHandler,), {
        "protocol_version": protocol_version, "log_message": lambda *a: None})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(site)))
    srv.daemon_threads = True
    run_in_thread(srv.serve_forever, 0.05)
    try:
        status, out = run_client(srv.server_address[1], "/about.txt", "/index.html", "/nope", expect=None)
    finally:
        srv.shutdown()
        srv.server_close()
    assert status == 0
    assert (site / "about.txt").read_text() in out and "<h1>Hello from the socklab HTTP server</h1>" in out
    assert "< HTTP/1.0 404 File not found" in out or f"< {protocol_version} 404 File not found" in out
    assert out.rstrip().endswith(f"on {connections} connection" + ("s" if connections > 1 else ""))


# --- step 1: hello world --------------------------------------------------------


@pytest.fixture
def hello_server(run_in_thread):
    listener = socket.create_server(("127.0.0.1", 0))

    def serve(n):
        with listener:
            for _ in range(n):
                hello.serve_one(listener)

    return listener, lambda n: run_in_thread(serve, n)


def test_hello_world_answers_our_client_and_http_client(hello_server):
    listener, serve = hello_server
    port = listener.getsockname()[1]
    serve(2)
    status, out = run_client(port, "/", fail=True)
    assert status == 0 and "< HTTP/1.1 200 OK" in out and "\nHello, World\n" in out
    assert "its end marked the end of the body" in out
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    conn.request("GET", "/")
    response = conn.getresponse()
    assert response.status == 200 and response.read() == b"Hello, World"
    conn.close()
