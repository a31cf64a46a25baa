"""make bench's probes, on loopback: they count what they should (no timing is asserted)."""

from __future__ import annotations

import functools
import threading
from contextlib import contextmanager
from http.server import ThreadingHTTPServer

from socklab.echo import server as echo_server
from socklab.host.bench.probes import echo_rtt, http_load, many_clients, stdlib_http
from socklab.http.server import HttpServer, write_demo_site


@contextmanager
def serving(server):
    """Run a socketserver-like server in a thread; shut down and closed on exit."""
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_echo_rtt_gives_one_sample_per_round_trip_each_way_of_timing():
    with serving(echo_server.create_server("threaded", ("127.0.0.1", 0), idle_timeout=10)) as port:
        result = echo_rtt.main("127.0.0.1", port, 20, 0.0, 10)
    for kind in ("stamped_us", "wall_us"):  # stamped: the kernel stamped every reply (SO_TIMESTAMPNS)
        assert len(result[kind]) == 20 and all(r > 0 for r in result[kind]), kind


def test_many_clients_are_all_answered_by_the_selectors_server():
    with serving(echo_server.create_server("selectors", ("127.0.0.1", 0), idle_timeout=10)) as port:
        result = many_clients.main("127.0.0.1", port, 200, 20)
    assert (result["connected"], result["answered"], len(result["latency_us"])) == (200, 200, 200)


def test_many_clients_against_the_blocking_server_get_one_answer_within_the_deadline():
    with serving(echo_server.create_server("blocking", ("127.0.0.1", 0), idle_timeout=10)) as port:
        result = many_clients.main("127.0.0.1", port, 20, 1.0)
    assert result["connected"] == 20  # the backlog holds them all
    assert result["answered"] == 1  # the server is still with the first, which stays connected


def test_http_load_counts_whole_responses_from_both_servers(tmp_path):
    write_demo_site(tmp_path)
    handler = functools.partial(stdlib_http.Handler, directory=str(tmp_path))
    for server in (HttpServer(("127.0.0.1", 0), str(tmp_path), idle_timeout=10), ThreadingHTTPServer(("127.0.0.1", 0), handler)):
        with serving(server) as port:
            result = http_load.main("127.0.0.1", port, "/index.html", 3, 60, 20)
        assert (result["requests"], result["errors"]) == (60, 0), type(server).__name__


def test_http_load_counts_a_404_as_an_error(tmp_path):
    with serving(HttpServer(("127.0.0.1", 0), str(tmp_path), idle_timeout=10)) as port:
        result = http_load.main("127.0.0.1", port, "/missing", 2, 10, 20)
    assert (result["requests"], result["errors"]) == (0, 2)
