"""The http wire format, fed the way recv really delivers bytes.

Requests and responses are fed whole, one byte at a time (the partial-recv
case) and merged into one chunk with what follows (pipelining: the
sticky-packet case); every refusal carries the status a server answers.
"""

from __future__ import annotations

import pytest

from socklab.framing import NEED_DATA, LocalProtocolError, RemoteProtocolError
from socklab.http import protocol as p

GET = b"GET /index.html HTTP/1.1\r\nHost: server:8080\r\nAccept: */*\r\n\r\n"
HEAD_CLOSE = b"HEAD /about.txt HTTP/1.1\r\nHost: server\r\nConnection: close\r\n\r\n"
POST = b"POST /form HTTP/1.1\r\nHost: server\r\nContent-Length: 5\r\n\r\nhello"
OLD = b"GET / HTTP/1.0\r\n\r\n"


def requests(chunks, max_body=p.MAX_BODY) -> list:
    decoder, events = p.RequestDecoder(max_body), []
    for chunk in chunks:
        decoder.feed(chunk)
        while (event := decoder.next_event()) is not NEED_DATA:
            events.append(event)
    assert decoder.buffered == 0
    return events


SPLITS = {
    "whole": lambda data: [data],
    "byte by byte": lambda data: [data[i : i + 1] for i in range(len(data))],
    "cut every 7 bytes": lambda data: [data[i : i + 7] for i in range(0, len(data), 7)],
}


@pytest.mark.parametrize("split", SPLITS)
def test_one_request_however_the_bytes_arrive(split):
    [request] = requests(SPLITS[split](GET))
    assert (request.method, request.target, request.version) == ("GET", "/index.html", "HTTP/1.1")
    assert request.headers.get("host") == "server:8080" and request.headers.get("ACCEPT") == "*/*"
    assert request.keep_alive and request.body == b""


@pytest.mark.parametrize("split", SPLITS)
def test_pipelined_requests_merged_in_one_chunk_come_out_one_by_one(split):
    data = GET + POST + HEAD_CLOSE + OLD
    events = requests(SPLITS[split](data))
    assert [(r.method, r.target) for r in events] == [("GET", "/index.html"), ("POST", "/form"), ("HEAD", "/about.txt"), ("GET", "/")]
    assert events[1].body == b"hello"
    assert [r.keep_alive for r in events] == [True, True, False, False]


def test_an_incomplete_head_or_body_needs_data_and_keeps_what_it_has():
    decoder = p.RequestDecoder()
    decoder.feed(POST[:-1])
    assert decoder.next_event() is NEED_DATA
    assert decoder.body_remaining == 5 and decoder.buffered == 4
    decoder.feed(POST[-1:] + GET[:10])
    assert decoder.next_event().body == b"hello"
    assert decoder.next_event() is NEED_DATA and decoder.buffered == 10


def test_bare_lf_line_ends_and_leading_empty_lines_are_tolerated():
    [request] = requests([b"\r\n\nGET / HTTP/1.1\nHost: x\n\n"])
    assert request.target == "/" and request.headers.get("Host") == "x"


def test_http_1_0_keeps_the_connection_only_when_asked():
    [plain, asked] = requests([OLD + b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"])
    assert not plain.keep_alive and asked.keep_alive


def refusal(data: bytes, max_body: int = p.MAX_BODY) -> p.HttpError:
    decoder = p.RequestDecoder(max_body)
    decoder.feed(data)
    with pytest.raises(p.HttpError) as caught:
        decoder.next_event()
    # The stream has lost its boundaries: the decoder stays failed.
    with pytest.raises(p.HttpError):
        decoder.next_event()
    return caught.value


@pytest.mark.parametrize(
    "data, status",
    [
        (b"GET /\r\n\r\n", 400),  # HTTP/0.9 style: no version
        (b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400),  # two spaces
        (b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400),  # method is not a token
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host in HTTP/1.1
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),  # space before the colon
        (b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n", 400),
        (b"GET /\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", 400),  # raw non-ASCII target
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"GET / HTTP/one\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (b"GET / HTTP/0.9\r\n\r\n", 505),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
    ],
)
def test_malformed_requests_carry_the_status_to_answer(data, status):
    error = refusal(data)
    assert error.status == status and isinstance(error, RemoteProtocolError)
    assert str(error).startswith(str(status))


def test_a_body_over_the_limit_is_413_before_any_of_it_arrives():
    assert refusal(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000001\r\n\r\n", max_body=1000).status == 413


def test_a_request_line_over_the_limit_is_414_without_waiting_for_its_end():
    assert refusal(b"GET /" + b"a" * p.MAX_REQUEST_LINE).status == 414


def test_a_long_header_line_is_431_without_waiting_for_its_end():
    assert refusal(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * p.MAX_HEADER_LINE).status == 431


def test_too_many_headers_is_431():
    many = b"".join(b"X-%d: y\r\n" % i for i in range(p.MAX_HEADERS + 1))
    assert refusal(b"GET / HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n").status == 431


def test_a_head_over_the_total_limit_is_431():
    lines = b"".join(b"X-%d: %s\r\n" % (i, b"v" * 4000) for i in range(p.MAX_HEAD // 4000 + 1))
    assert refusal(b"GET / HTTP/1.1\r\nHost: x\r\n" + lines).status == 431


def test_endless_empty_lines_are_bounded_too():
    assert refusal(b"\r\n" * (p.MAX_HEAD // 2 + 1)).status == 431


# --- responses ----------------------------------------------------------------

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nConnection: close\r\n\r\nno\n"


def responses(chunks, methods, eof=False) -> list:
    decoder, events, methods = p.ResponseDecoder(), [], list(methods)
    decoder.expect(methods.pop(0))
    for i, chunk in enumerate(chunks):
        decoder.feed(chunk)
        if eof and i == len(chunks) - 1:
            decoder.feed_eof()
        while (event := decoder.next_event()) is not NEED_DATA:
            events.append(event)
            if isinstance(event, p.EndOfMessage):
                if not methods:
                    return events
                decoder.expect(methods.pop(0))
    return events


def bodies(events) -> list:
    """Each message as (status, body), whatever the Data pieces were."""
    out = []
    for e in events:
        if isinstance(e, p.Response):
            out.append([e.status, b""])
        elif isinstance(e, p.Data):
            out[-1][1] += e.data
    return [tuple(x) for x in out]


@pytest.mark.parametrize("split", SPLITS)
def test_responses_by_content_length_however_the_bytes_arrive(split):
    head_answer = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"  # HEAD: the size, no body
    events = responses(SPLITS[split](OK + head_answer + NOT_FOUND), ["GET", "HEAD", "GET"])
    assert bodies(events) == [(200, b"hello"), (200, b""), (404, b"no\n")]
    assert sum(isinstance(e, p.EndOfMessage) for e in events) == 3
    assert [e.keep_alive for e in events if isinstance(e, p.Response)] == [True, True, False]


def test_a_body_without_length_runs_until_the_close():
    hello = b"HTTP/1.1 200 OK\r\n\r\nHello, World"
    decoder = p.ResponseDecoder()
    decoder.feed(hello)
    response = decoder.next_event()
    assert response.status == 200 and response.reason == "OK" and decoder.until_close
    assert decoder.next_event() == p.Data(b"Hello, World")
    assert decoder.next_event() is NEED_DATA
    decoder.feed_eof()
    assert decoder.next_event() == p.EndOfMessage()


def test_204_and_304_have_no_body_whatever_they_say():
    events = responses([b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n"], ["GET", "GET"])
    assert bodies(events) == [(204, b""), (304, b"")]


@pytest.mark.parametrize(
    "data, message",
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", "still to come"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "before a whole response head"),
        (b"", "without a response"),
    ],
)
def test_a_close_in_the_middle_of_a_response_is_an_error(data, message):
    decoder = p.ResponseDecoder()
    decoder.feed(data)
    decoder.feed_eof()
    with pytest.raises(RemoteProtocolError, match=message):
        while decoder.next_event() is not NEED_DATA:
            pass


@pytest.mark.parametrize(
    "data, message",
    [
        (b"HTTP/2 200\r\n\r\n", "not an HTTP version"),
        (b"HTTP/1.1 OK\r\n\r\n", "malformed status line"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "not supported"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "bad Content-Length"),
    ],
)
def test_malformed_responses_are_remote_protocol_errors(data, message):
    decoder = p.ResponseDecoder()
    decoder.feed(data)
    with pytest.raises(RemoteProtocolError, match=message):
        decoder.next_event()


# --- encoding -----------------------------------------------------------------


def test_encoded_messages_decode_to_themselves():
    request = p.Request("GET", "/a%20b", p.Headers([("Host", "server"), ("Connection", "close")]))
    [back] = requests([p.encode(request)])
    assert back == request
    response = p.Response(404, p.Headers([("Content-Length", "0")]))
    assert p.encode(response) == b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    assert responses([p.encode(response)], ["GET"])[0] == p.Response(404, response.headers, "Not Found")


@pytest.mark.parametrize(
    "event",
    [
        p.Response(200, p.Headers([("Location", "/x\r\nSet-Cookie: evil=1")])),  # header injection
        p.Response(200, p.Headers([("Bad Name", "v")])),
        p.Request("GET", "/a b", p.Headers([("Host", "x")])),
        p.Request("GET", "/\r\nHost: evil", p.Headers([("Host", "x")])),
    ],
)
def test_encode_refuses_what_would_break_the_framing(event):
    with pytest.raises(LocalProtocolError):
        p.encode(event)
