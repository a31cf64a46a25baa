"""The shell wire format, fed the way recv really delivers bytes.

The length framing must give the same results however the bytes are cut:
whole, byte by byte, merged. The tutorials' reader (naive and ack framings)
must not -- these tests pin down exactly how it fails, which is the lesson.
"""

from __future__ import annotations

import pytest

from socklab.framing import NEED_DATA, LocalProtocolError, RemoteProtocolError
from socklab.shell import protocol as p

HELLO = "héllo wörld ✓\n"  # 14 characters, 18 bytes

RESULTS = [
    p.Result(HELLO.encode(), b"", 0, 0, 12),
    p.Result(b"", b"ls: cannot access '/nope'\n", 2, 0, 3),
    p.Result(b"", b"", 0, 0, 0),  # no output at all: a header and nothing else
    p.Result(b"y\n" * 100, b"", -9, p.TRUNCATED, 40),
    p.Result(b"", b"", -9, p.TIMED_OUT, 2001),
    p.refusal("empty command"),
]

SPLITS = {
    "whole frames": lambda frames: frames,
    "byte by byte": lambda frames: [b"".join(frames)[i : i + 1] for i in range(len(b"".join(frames)))],
    "all merged in one chunk": lambda frames: [b"".join(frames)],
    "cut every 7 bytes": lambda frames: [b"".join(frames)[i : i + 7] for i in range(0, len(b"".join(frames)), 7)],
}


def decode(decoder, chunks) -> list:
    events = []
    for chunk in chunks:
        decoder.feed(chunk)
        while (event := decoder.next_event()) is not NEED_DATA:
            events.append(event)
    assert decoder.buffered == 0
    return events


@pytest.mark.parametrize("split", SPLITS)
def test_length_framing_gives_the_same_results_however_the_bytes_arrive(split):
    frames = [p.encode_result(r) for r in RESULTS]
    assert decode(p.LengthDecoder(), SPLITS[split](frames)) == RESULTS


@pytest.mark.parametrize("split", SPLITS)
def test_client_lines_come_out_the_same_however_the_bytes_arrive(split):
    frames = [p.hello("ack"), p.encode_command("printf 'héllo'"), p.ACK, b"echo from telnet\r\n"]
    lines = decode(p.LineDecoder(), SPLITS[split](frames))
    assert lines == [p.Line(b"framing ack"), p.Line("printf 'héllo'".encode()), p.Line(b"ack"), p.Line(b"echo from telnet")]


def test_length_header_is_five_big_endian_fields_then_stdout_then_stderr():
    wire = p.encode_result(p.Result(b"hi\n", b"e", 2, p.TRUNCATED, 12))
    assert wire[: p.HEADER.size] == bytes.fromhex("00000003" "00000001" "00000002" "00000001" "0000000c")
    assert wire[p.HEADER.size :] == b"hi\ne"


def test_lengths_count_bytes_not_characters():
    assert len(HELLO) == 14
    assert p.encode_result(p.Result(HELLO.encode()))[:4] == (18).to_bytes(4, "big")
    assert p.encode_text_length(p.text_blob(p.Result(HELLO.encode()))) == b"18"


def test_an_oversized_reply_is_refused_from_the_header_alone():
    decoder = p.LengthDecoder(max_output=100)
    decoder.feed(p.HEADER.pack(60, 41, 0, 0, 0))  # no output follows
    with pytest.raises(RemoteProtocolError, match="over the 100-byte limit"):
        decoder.next_event()


def test_an_over_long_line_is_refused_before_its_end_arrives():
    decoder = p.LineDecoder(max_line=10)
    decoder.feed(b"x" * 11)
    with pytest.raises(RemoteProtocolError, match="no end of line within 10 bytes"):
        decoder.next_event()


def test_hello_names_a_framing_and_anything_else_is_a_command():
    assert p.parse_hello(p.Line(b"framing naive")) == "naive"
    assert p.parse_hello(p.Line(b"ls -l")) is None
    with pytest.raises(RemoteProtocolError, match="unknown framing"):
        p.parse_hello(p.Line(b"framing smoke-signals"))
    with pytest.raises(LocalProtocolError, match="unknown framing"):
        p.hello("smoke-signals")


@pytest.mark.parametrize("command, message", [("", "empty"), ("  ", "empty"), ("ls\nrm", "newline"),
                                              ("x" * p.MAX_LINE, "limit")])
def test_encode_command_refuses_what_is_not_one_line(command, message):
    with pytest.raises(LocalProtocolError, match=message):
        p.encode_command(command)


def test_text_blob_folds_stderr_and_the_ending_into_the_output():
    blob = p.text_blob(p.Result(b"out\n", b"err\n", 2))
    assert blob == b"out\nerr\n[socklab] exit status 2\n"
    assert b"killed after 2.0 s" in p.text_blob(p.Result(b"", b"", -9, p.TIMED_OUT, 2001))
    assert b"output truncated at 4 bytes" in p.text_blob(p.Result(b"yyyy", b"", -9, p.TRUNCATED))


# -- the tutorials' reader: right only when the length arrives alone ---------

BLOB = HELLO.encode()


def test_ack_delivery_length_alone_then_output_reads_right():
    # What the ack framing guarantees: nothing follows the length until the client acks.
    assert decode(p.TutorialDecoder(), [b"18", BLOB]) == [p.LengthAnnounced(18), p.Output(BLOB)]


def test_ack_delivery_with_the_output_cut_anywhere_reads_right():
    chunks = [b"18"] + [BLOB[i : i + 1] for i in range(len(BLOB))]
    assert decode(p.TutorialDecoder(), chunks) == [p.LengthAnnounced(18), p.Output(BLOB)]


def test_naive_delivery_merged_is_misparsed():
    decoder = p.TutorialDecoder()
    decoder.feed(b"18" + BLOB)  # length and output in one recv: the sticky-packet problem
    with pytest.raises(p.Misparse, match="arrived merged"):
        decoder.next_event()


def test_naive_delivery_merged_with_digits_reads_a_wrong_length_silently():
    # `printf 7`: the length 1 and the output 7 read as the length 17, and the
    # reader waits for 16 bytes that will never come.
    decoder = p.TutorialDecoder()
    decoder.feed(b"1" + b"7")
    assert decoder.next_event() == p.LengthAnnounced(17)
    assert decoder.next_event() is NEED_DATA


def test_a_length_split_across_two_reads_is_misread_even_with_ack():
    # The residual flaw of the tutorials' fix: a recv may return "1" of "18".
    decoder = p.TutorialDecoder()
    decoder.feed(b"1")
    assert decoder.next_event() == p.LengthAnnounced(1)


def test_an_absurd_length_is_called_a_misparse():
    decoder = p.TutorialDecoder(max_output=1000)
    decoder.feed(b"12345")
    with pytest.raises(p.Misparse, match="over the 1000-byte limit"):
        decoder.next_event()
