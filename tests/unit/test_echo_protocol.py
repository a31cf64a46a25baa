"""The echo wire format, fed the way recv really delivers bytes.

The same lines are fed whole, one byte at a time (the partial-recv case) and
merged into one chunk (the sticky-packet case): the decoder must produce the
same lines every way.
"""

from __future__ import annotations

import pytest

from socklab.echo import protocol as p
from socklab.echo.server import EchoSession
from socklab.framing import NEED_DATA, Line, LocalProtocolError, RemoteProtocolError

LINES = [b"hello world", b"", "héllo".encode(), b"with CR\r", b"\xff\xfe not utf-8", b"x" * p.MAX_LINE]


def wire(lines: list[bytes]) -> bytes:
    return b"".join(p.encode_line(line) for line in lines)


def decode(chunks) -> list[bytes]:
    decoder, lines = p.LineDecoder(), []
    for chunk in chunks:
        decoder.feed(chunk)
        while (event := decoder.next_event()) is not NEED_DATA:
            lines.append(event.data)
    assert decoder.buffered == 0
    return lines


SPLITS = {
    "whole lines": lambda data: [p.encode_line(line) for line in LINES],
    "byte by byte": lambda data: [data[i : i + 1] for i in range(len(data))],
    "all merged in one chunk": lambda data: [data],
    "cut every 7 bytes": lambda data: [data[i : i + 7] for i in range(0, len(data), 7)],
}


@pytest.mark.parametrize("split", SPLITS)
def test_same_lines_however_the_bytes_arrive(split):
    assert decode(SPLITS[split](wire(LINES))) == LINES


def test_a_line_ends_at_lf_and_the_lf_is_not_part_of_it():
    assert p.encode_line(b"hi") == b"hi\n"
    decoder = p.LineDecoder()
    decoder.feed(b"one\ntw")
    assert decoder.next_event() == Line(b"one")
    assert decoder.next_event() is NEED_DATA
    assert decoder.buffered == 2
    decoder.feed(b"o\n")
    assert decoder.next_event() == Line(b"two")


def test_a_line_of_exactly_the_limit_passes_one_byte_more_is_refused():
    decoder = p.LineDecoder(max_line=8)
    decoder.feed(b"12345678\n")
    assert decoder.next_event() == Line(b"12345678")
    decoder.feed(b"123456789")
    with pytest.raises(RemoteProtocolError, match="no end of line within 8 bytes"):
        decoder.next_event()


def test_an_overlong_line_is_refused_even_when_it_arrives_byte_by_byte():
    decoder = p.LineDecoder(max_line=16)
    with pytest.raises(RemoteProtocolError):
        for _ in range(100):  # bounded: must raise on the 17th byte
            decoder.feed(b"a")
            assert decoder.next_event() is NEED_DATA
    assert decoder.buffered == 17


def test_encode_refuses_what_the_peer_would_refuse():
    with pytest.raises(LocalProtocolError, match="line feed"):
        p.encode_line(b"two\nlines")
    with pytest.raises(LocalProtocolError, match="exceeds"):
        p.encode_line(b"x" * (p.MAX_LINE + 1))


@pytest.mark.parametrize(
    "line, upper",
    [
        (b"hello world", b"HELLO WORLD"),
        ("héllo ß".encode(), "HÉLLO SS".encode()),
        (b"\xff abc", b"\xff ABC"),  # not UTF-8: ASCII letters only, the rest as is
        (b"crlf\r", b"CRLF\r"),
    ],
)
def test_upper_mode_upper_cases_text_and_survives_garbage(line, upper):
    assert p.reply_to(line, "upper") == upper
    assert p.reply_to(line, "echo") == line


def test_an_upper_cased_reply_fits_the_reply_limit():
    longest = "ΐ".encode() * (p.MAX_LINE // 2)  # the largest growth upper() can cause: 3 times
    assert len(longest) <= p.MAX_LINE
    assert len(p.reply_to(longest)) <= p.MAX_REPLY


def test_an_error_line_is_recognised_unless_it_echoes_what_was_sent():
    line = p.error_line(p.ErrorCode.LINE_TOO_LONG, "no end of line within 65536 bytes")
    assert line == b"ERROR line-too-long: no end of line within 65536 bytes\n"
    reply = line.rstrip(b"\n")
    assert p.as_error(reply, b"hello") == p.ServerError("line-too-long", "no end of line within 65536 bytes")
    assert p.as_error(reply, b"error line-too-long: no end of line within 65536 bytes") is None
    assert p.as_error(b"HELLO", b"hello") is None


def test_the_session_answers_every_whole_line_of_a_merged_read_and_keeps_the_rest():
    session = EchoSession("test")
    assert session.received(b"one\ntwo\nthr") == b"ONE\nTWO\n"
    assert session.midway == "3 bytes of a line had arrived"
    assert session.received(b"ee\n") == b"THREE\n"
    assert session.midway == "" and not session.finished


def test_the_session_answers_an_overlong_line_with_an_error_and_finishes():
    session = EchoSession("test", reply="echo")
    reply = session.received(b"x" * (p.MAX_LINE + 1))
    assert reply.startswith(b"ERROR line-too-long: ") and reply.endswith(b"\n")
    assert session.finished


def test_the_session_refuses_an_unknown_reply_mode_at_once():
    with pytest.raises(ValueError, match="unknown reply mode"):
        EchoSession("test", reply="shout")
