"""The ftp wire format, fed the way recv really delivers bytes.

Every exchange is fed whole, one byte at a time (the partial-recv case), and
merged into a single chunk with what follows (the sticky-packet case): the
decoder must produce the same messages every way.
"""

from __future__ import annotations

import hashlib

import pytest

from socklab.framing import NEED_DATA, LocalProtocolError, RemoteProtocolError
from socklab.ftp import protocol as p

BODY = bytes(range(256)) * 40 + b"tail"

# One direction of a download conversation, and one of an upload.
SERVER_SIDE = [
    p.Ok("checksum md5"),
    p.FileHeader(len(BODY), "sha256"),
    p.Digest(hashlib.sha256(BODY).digest()),
    p.Error(p.ErrorCode.NOT_FOUND, "no such file: x"),
    p.FileHeader(0, "md5"),
    p.Digest(hashlib.md5(b"").digest()),
    p.Ok("bye"),
]
CLIENT_SIDE = [p.Command("checksum", "md5"), p.Command("get", "a file with spaces.bin"), p.Command("ls"), p.Command("quit")]


def wire(messages: list) -> bytes:
    """Encode messages; a FileHeader is followed by BODY (or nothing for size 0)."""
    out = b""
    for m in messages:
        out += p.encode(m)
        if isinstance(m, p.FileHeader) and m.size:
            out += BODY
    return out


def decode(chunks) -> list:
    decoder, events = p.Decoder(), []
    for chunk in chunks:
        decoder.feed(chunk)
        while (event := decoder.next_event()) is not NEED_DATA:
            events.append(event)
    assert decoder.buffered == 0 and decoder.body_remaining == 0
    return events


def join_bodies(events: list) -> list:
    """Adjacent Body pieces as one, so that any split compares equal."""
    out: list = []
    for e in events:
        if isinstance(e, p.Body) and out and isinstance(out[-1], p.Body):
            out[-1] = p.Body(out[-1].data + e.data)
        else:
            out.append(e)
    return out


def expected(messages: list) -> list:
    out: list = []
    for m in messages:
        out.append(m)
        if isinstance(m, p.FileHeader) and m.size:
            out.append(p.Body(BODY))
    return out


SPLITS = {
    "whole frames": lambda data, messages: [wire([m]) for m in messages],
    "byte by byte": lambda data, messages: [data[i : i + 1] for i in range(len(data))],
    "all merged in one chunk": lambda data, messages: [data],
    "cut every 7 bytes": lambda data, messages: [data[i : i + 7] for i in range(0, len(data), 7)],
}


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("messages", [SERVER_SIDE, CLIENT_SIDE], ids=["server side", "client side"])
def test_same_messages_however_the_bytes_arrive(split, messages):
    data = wire(messages)
    assert join_bodies(decode(SPLITS[split](data, messages))) == expected(messages)


def test_frame_header_layout_is_kind_then_big_endian_length():
    assert p.encode(p.Command("get", "a.txt")) == b"C\x00\x00\x00\x09get a.txt"
    assert p.encode(p.FileHeader(5, "md5")) == b"F\x00\x00\x00\x0b" + (5).to_bytes(8, "big") + b"md5"


def test_command_parse_keeps_the_rest_of_the_line_as_the_argument():
    assert p.Command.parse("GET  my file.txt ") == p.Command("get", "my file.txt")
    assert p.Command.parse("ls") == p.Command("ls", "")


def test_an_oversized_length_is_refused_from_the_header_alone():
    decoder = p.Decoder()
    decoder.feed(b"C" + (p.MAX_PAYLOAD + 1).to_bytes(4, "big"))  # no payload follows
    with pytest.raises(RemoteProtocolError, match="over the 65536-byte limit"):
        decoder.next_event()


@pytest.mark.parametrize(
    "data, message",
    [
        (b"Z\x00\x00\x00\x00", "unknown frame kind"),
        (b"C\x00\x00\x00\x02\xff\xfe", "not valid UTF-8"),
        (b"F\x00\x00\x00\x03abc", "too short"),
        (b"F\x00\x00\x00\x0b" + (1).to_bytes(8, "big") + b"crc", "unknown checksum"),
    ],
)
def test_malformed_frames_raise_remote_protocol_errors(data, message):
    decoder = p.Decoder()
    decoder.feed(data)
    with pytest.raises(RemoteProtocolError, match=message):
        decoder.next_event()


def test_a_file_body_must_be_followed_by_its_digest():
    decoder = p.Decoder()
    decoder.feed(p.encode(p.FileHeader(2)) + b"hi" + p.encode(p.Ok("not a digest")))
    assert decoder.next_event() == p.FileHeader(2)
    assert decoder.next_event() == p.Body(b"hi")
    with pytest.raises(RemoteProtocolError, match="expected a D frame"):
        decoder.next_event()


def test_an_incomplete_frame_needs_data_and_keeps_what_it_has():
    decoder = p.Decoder()
    frame = p.encode(p.Ok("hello"))
    decoder.feed(frame[:-1])
    assert decoder.next_event() is NEED_DATA
    assert decoder.buffered == len(frame) - 1
    decoder.feed(frame[-1:])
    assert decoder.next_event() == p.Ok("hello")


def test_consume_body_accounts_for_bytes_received_directly():
    decoder = p.Decoder()
    decoder.feed(p.encode(p.FileHeader(10)))
    assert decoder.next_event() == p.FileHeader(10)
    decoder.consume_body(10)
    decoder.feed(p.encode(p.Digest(b"x")))
    assert decoder.next_event() == p.Digest(b"x")


def test_consume_body_refuses_more_than_the_body():
    decoder = p.Decoder()
    decoder.feed(p.encode(p.FileHeader(3)))
    decoder.next_event()
    with pytest.raises(LocalProtocolError):
        decoder.consume_body(4)


def test_encode_refuses_what_the_peer_would_refuse():
    with pytest.raises(LocalProtocolError, match="exceeds"):
        p.encode(p.Ok("x" * (p.MAX_PAYLOAD + 1)))
    with pytest.raises(ValueError, match="unknown checksum"):
        p.encode(p.FileHeader(1, "crc32"))


def test_an_error_quoting_a_huge_request_is_cut_to_fit_one_frame():
    # Found by fuzzing: "unknown command <a 60 KiB verb>" did not fit an E
    # frame, so the server closed without telling the client why.
    message = p.Error(p.ErrorCode.BAD_COMMAND, "unknown command " + "\u00e9" * p.MAX_PAYLOAD)
    data = p.encode(message)
    assert len(data) <= p.HEADER.size + p.MAX_PAYLOAD
    decoder = p.Decoder()
    decoder.feed(data)
    error = decoder.next_event()
    assert error.code == p.ErrorCode.BAD_COMMAND
    assert error.message.startswith("unknown command \u00e9") and error.message.endswith("...")
