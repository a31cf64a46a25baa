"""HTTP's classic attacks on a parser, against the server as a real process.

Conflicting Content-Length (request smuggling), huge header counts, slow
headers (slowloris), pipelined requests. Each gets a right answer or a clear
error status -- never a hang, and never a hang of the other clients.
"""

from __future__ import annotations

import socket
import time

import pytest

from harness import Input, Outcome, tcp_exchange
from socklab.framing import NEED_DATA
from socklab.http import protocol as p
from socklab.http.client import HttpClient

TIMEOUT = 10.0


def responses(outcome: Outcome, methods: list[str]) -> list[tuple[p.Response, bytes]]:
    """The responses in a whole answer, one per method given (HEAD has no body); nothing may follow."""
    assert outcome.eof and not outcome.stalled, outcome
    decoder = p.ResponseDecoder()
    decoder.feed(outcome.received)
    decoder.feed_eof()
    found = []
    for method in methods:
        decoder.expect(method)
        head, body = decoder.next_event(), bytearray()
        while not isinstance(event := decoder.next_event(), p.EndOfMessage):
            body += event.data
        found.append((head, bytes(body)))
    assert decoder.buffered == 0, f"more than {len(methods)} responses: {outcome.received[-200:]!r}"
    return found


def request(target: str = "/index.html", method: str = "GET", headers=(), body: bytes = b"", close=False) -> bytes:
    all_headers = [("Host", "edge"), *headers] + [("Connection", "close")] * close
    return p.encode(p.Request(method, target, p.Headers(all_headers), body=body))


def raw_request(head_lines: list[str], body: bytes = b"") -> bytes:
    return "".join(line + "\r\n" for line in head_lines).encode("latin-1") + b"\r\n" + body


def exchange(server, data: bytes) -> Outcome:
    return tcp_exchange(server.address(), Input([data]), stall=TIMEOUT * 2)


def still_serves(server, root) -> None:
    with HttpClient(*server.address(), timeout=TIMEOUT) as client:
        body = bytearray()
        assert client.request("GET", "/index.html", sink=body.extend).response.status == 200
        assert bytes(body) == (root / "index.html").read_bytes()


# --- Content-Length ----------------------------------------------------------------------


@pytest.mark.parametrize("lengths, status", [
    (["5", "6"], 400),  # two headers that disagree: where does the body end?
    (["5, 6"], 400),  # a list that disagrees
    (["5", "5, 5"], 200),  # agreeing repeats are one value (RFC 9110 8.6)
    (["-1"], 400),
    (["+5"], 400),
    (["0x5"], 400),
    (["5 5"], 400),
    ([""], 400),
    (["99999999999999999999"], 400),  # 20 digits: no overflow, refused
    (["100000"], 413),  # over the 64 KiB a static server takes
    (["5", "Transfer-Encoding: chunked"], 501),
])
def test_content_length_conflicts_get_a_clear_status_and_the_connection_closes(http_server, tree, lengths, status):
    lines = ["POST /index.html HTTP/1.1" if status != 200 else "GET /index.html HTTP/1.1", "Host: edge"]
    lines += [h if ":" in h else f"Content-Length: {h}" for h in lengths]
    # A smuggled second request rides in the body: it must never be answered as one.
    outcome = exchange(http_server, raw_request(lines, b"hello") + request("/about.txt"))
    if status == 200:
        (first, body), (second, _) = responses(outcome, ["GET", "GET"])
        assert (first.status, body, second.status) == (200, tree[1].joinpath("index.html").read_bytes(), 200)
    else:
        [(response, body)] = responses(outcome, ["GET"])  # one answer, then the connection is closed
        assert response.status == status and response.headers.get("Connection") == "close", (response, body)
    still_serves(http_server, tree[1])


# --- many headers ------------------------------------------------------------------------


@pytest.mark.parametrize("count, status", [(p.MAX_HEADERS, 200), (p.MAX_HEADERS + 1, 431), (100_000, 431)])
def test_header_counts_are_bounded(http_server, tree, count, status):
    lines = ["GET /index.html HTTP/1.1", "Host: edge"] + [f"X-{i}: v" for i in range(count - 1)]
    [(response, _)] = responses(exchange(http_server, raw_request(lines)), ["GET"])
    assert response.status == status, response
    still_serves(http_server, tree[1])


@pytest.mark.parametrize("lines, status", [
    (["GET /" + "a" * p.MAX_REQUEST_LINE + " HTTP/1.1", "Host: edge"], 414),
    (["GET / HTTP/1.1", "Host: edge", "X: " + "v" * p.MAX_HEADER_LINE], 431),
    (["GET / HTTP/1.1", "Host: edge"] + [f"X-{i}: " + "v" * 1000 for i in range(70)], 431),  # a 70 KiB head
])
def test_oversized_heads_are_refused(http_server, tree, lines, status):
    [(response, _)] = responses(exchange(http_server, raw_request(lines)), ["GET"])
    assert response.status == status, response
    still_serves(http_server, tree[1])


# --- slowloris -----------------------------------------------------------------------------

SLOW_CLIENTS = 30


def test_slow_headers_hold_up_nobody_and_end_in_408(http_server, tree):
    """Clients that trickle a head byte by byte never complete it; others are served meanwhile."""
    slow = [socket.create_connection(http_server.address(), timeout=TIMEOUT) for _ in range(SLOW_CLIENTS)]
    try:
        for s in slow:
            s.sendall(b"GET /index.html HTTP/1.1\r\nHost: edge\r\n")
        trickle = b"X-Slow: " + b"z" * 10_000
        sent = 0

        def drip() -> None:
            nonlocal sent
            for s in slow:
                try:
                    s.send(trickle[sent : sent + 1])
                except OSError:
                    pass  # answered and closed already: the 408 is checked below
            sent += 1

        drip()
        # Served while every slow client is still in the middle of its head...
        for _ in range(10):
            still_serves(http_server, tree[1])
            drip()
        for s in slow:
            s.setblocking(False)
            with pytest.raises(BlockingIOError):  # ...and none of them has had an answer yet
                s.recv(1)
        # The request timeout (10 s in conftest) ends each with 408, whatever it still trickles.
        answers = {i: bytearray() for i in range(len(slow))}
        pending = set(answers)
        deadline = time.monotonic() + 60  # bounded: far beyond the 10 s the server allows
        while pending and time.monotonic() < deadline:
            time.sleep(0.2)
            drip()
            for i in list(pending):
                try:
                    data = slow[i].recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""  # reset after the server's lingering close: the answer came before
                answers[i] += data
                if not data:
                    pending.discard(i)
        assert not pending, f"{len(pending)} slow clients never got an answer"
        for i, data in answers.items():
            assert data.startswith(b"HTTP/1.1 408 "), (i, bytes(data[:100]))
    finally:
        for s in slow:
            s.close()
    still_serves(http_server, tree[1])


# --- pipelining ----------------------------------------------------------------------------

PIPELINE = [  # (method, target, status)
    ("GET", "/index.html", 200),
    ("HEAD", "/about.txt", 200),
    ("GET", "/missing", 404),
    ("POST", "/index.html", 405),
    ("GET", "/sub/", 200),
    ("GET", "/a.txt", 200),
    ("GET", "/%2e%2e/secret", 403),
    ("GET", "*", 400),
    ("HEAD", "/missing", 404),
]


def expected_body(root, method: str, target: str, status: int) -> bytes | None:
    if method == "HEAD":
        return b""
    if status != 200:
        return None  # an error text: checked by status only
    path = target.lstrip("/") + ("index.html" if target.endswith("/") else "")
    return (root / path).read_bytes()


@pytest.mark.parametrize("rounds", [1, 300])
def test_pipelined_requests_are_answered_in_order(http_server, tree, rounds):
    """All requests in one write (300 rounds: 2,700 requests, read while sending), the last with close."""
    plan = PIPELINE * rounds
    data = b"".join(request(target, method, close=i == len(plan) - 1) for i, (method, target, _) in enumerate(plan))
    got = responses(exchange(http_server, data), [method for method, _, _ in plan])
    for (method, target, status), (response, body) in zip(plan, got):
        assert response.status == status, (method, target, response)
        expected = expected_body(tree[1], method, target, status)
        assert expected is None or body == expected, (method, target, body[:80])


def test_a_malformed_request_in_a_pipeline_ends_it_after_the_ones_before(http_server, tree):
    data = request("/a.txt") + request("/about.txt") + b"GET /a.txt HTTP/1.1\r\nBad Header\r\n\r\n" + request("/a.txt")
    got = responses(exchange(http_server, data), ["GET", "GET", "GET"])
    assert [r.status for r, _ in got] == [200, 200, 400]
    assert got[0][1] == tree[1].joinpath("a.txt").read_bytes()
    still_serves(http_server, tree[1])


def test_pipelined_request_bodies_are_skipped_exactly(http_server, tree):
    body = bytes(range(256)) * 100  # binary, and with what looks like request lines inside
    data = (request("/a.txt", "GET", [("Content-Length", str(len(body)))], body)
            + request("/a.txt", "GET", [("Content-Length", "22")], b"GET /missing HTTP/1.1\r\n")
            + request("/about.txt", close=True))
    got = responses(exchange(http_server, data), ["GET", "GET", "GET"])
    assert [r.status for r, _ in got] == [200, 200, 200]
    assert got[2][1] == tree[1].joinpath("about.txt").read_bytes()
