"""The timeline, on connections built here segment by segment (see Flow in test_pcap)."""

from __future__ import annotations

import argparse
import struct

from test_pcap import Flow, ethernet, ipv4, pcap

from socklab.ftp import protocol as ftp
from socklab.http import protocol as http
from socklab.inspector import capture, timeline
from socklab.inspector.pcap import ACK, PSH, RST, read_packets
from socklab.inspector.timeline import Run, build, collapse, render, timeline_text
from socklab.shell import protocol as shell
from socklab.udp import protocol as udp

DATA = PSH | ACK


def notes(row) -> list[str]:
    return [note.text for note in row.notes]


def rows_of(flow: Flow, exercise: str):
    rows, _ = build(flow.packets(), exercise)
    return rows


def data_rows(rows):
    return [r for r in rows if r.packet.payload]


# -- the TCP bookkeeping --------------------------------------------------------


def test_handshake_close_relative_numbers_and_scaled_window():
    flow = Flow(isn=(4_000_000_000, 123))  # the client's sequence numbers wrap past 2**32
    flow.handshake(wscale=(7, 2))
    flow.send("c", DATA, b"x" * 10, window=500)
    flow.close()
    rows = rows_of(flow, "")
    assert [m for r in rows for m in r.marks] == [
        "handshake 1/3 (mss=1460 wscale=7)", "handshake 2/3 (mss=1460 wscale=2)", "handshake 3/3",
        "close 1: FIN from client", "close 2: FIN from server", "close 3: last ACK"]
    syn, syn_ack, _, data, fin = rows[:5]
    assert (syn.seq, syn.ack, syn_ack.seq, syn_ack.ack) == (0, None, 0, 1)
    assert (data.seq, data.ack) == (1, 1)
    assert fin.seq == 11  # after the 10 bytes, across the wrap
    assert data.window == 500 << 7 and syn.window == 65535  # a SYN's own window is never scaled


def test_retransmission_is_flagged_and_not_decoded_twice():
    flow = Flow()
    flow.handshake()
    first = flow.seq["c"]
    flow.send("c", DATA, ftp.encode(ftp.Command("ls")))
    flow.send("c", DATA, ftp.encode(ftp.Command("ls")), seq=first)
    rows = data_rows(rows_of(flow, "ftp"))
    assert notes(rows[0]) == ['ftp C "ls"'] and not rows[0].marks
    assert rows[1].marks == ["RETRANSMISSION"] and notes(rows[1]) == []


def test_reset_is_flagged_with_who_sent_it():
    flow = Flow()
    flow.handshake()
    flow.send("s", RST | ACK)
    rows = rows_of(flow, "ftp")
    assert rows[-1].marks == ["RESET by server"]
    assert "RESET by server" in render(collapse(rows), build(flow.packets())[1])


def test_out_of_order_segments_are_held_then_reassembled():
    flow = Flow()
    flow.handshake()
    wire = ftp.encode(ftp.Command("get a.txt")) + ftp.encode(ftp.Command("quit"))
    start = flow.seq["c"]
    flow.send("c", DATA, wire[10:], seq=start + 10)  # the second half overtakes the first
    flow.send("c", DATA, wire[:10], seq=start)
    early, late = data_rows(rows_of(flow, "ftp"))
    assert early.marks == ["OUT OF ORDER: 10 bytes missing before it, held"] and notes(early) == []
    assert notes(late) == ['ftp C "get a.txt"', 'ftp C "quit"']
    assert late.marks == [f"fills the gap: {len(wire) - 10} held bytes delivered with it"]


def test_a_segment_partly_retransmitted_feeds_only_its_new_bytes():
    flow = Flow()
    flow.handshake()
    wire = ftp.encode(ftp.Command("ls")) + ftp.encode(ftp.Command("quit"))
    start = flow.seq["c"]
    flow.send("c", DATA, wire[:4])
    flow.send("c", DATA, wire, seq=start)  # resent from the start, with more
    rows = data_rows(rows_of(flow, "ftp"))
    assert rows[1].marks == ["RETRANSMISSION (with new data)"]
    assert notes(rows[1]) == ['ftp C "ls"', 'ftp C "quit"']


def test_the_same_ports_again_after_a_close_are_a_new_conversation():
    first = Flow(isn=(1000, 7000))
    first.handshake()
    first.close()
    second = Flow(isn=(90_000, 5), start=2.0)
    second.handshake()
    packets = list(read_packets(pcap(first.frames + second.frames)))
    rows, conversations = build(packets, "ftp")
    assert len(conversations) == 2 and rows[-1].conversation.number == 2


# -- each exercise's decoder ----------------------------------------------------


def test_ftp_frames_split_across_segments_and_merged_in_one():
    flow = Flow()
    flow.handshake()
    command = ftp.encode(ftp.Command("get a.txt"))
    flow.send("c", DATA, command[:3])  # the header itself cut in two
    flow.send("c", DATA, command[3:])
    reply = (ftp.encode(ftp.FileHeader(5)) + b"hello" + ftp.encode(ftp.Digest(bytes(range(32)))))
    flow.send("s", DATA, reply)  # header, body and digest in one segment
    flow.send("c", DATA, ftp.encode(ftp.Command("quit")))
    flow.send("s", DATA, ftp.encode(ftp.Ok("bye")))
    rows = data_rows(rows_of(flow, "ftp"))
    assert [notes(r) for r in rows] == [
        [],
        ['ftp C "get a.txt"'],
        ["ftp F size=5 sha256", "ftp body 5 bytes, end of the 5-byte file", "ftp D 0001020304050607... (32 bytes)"],
        ['ftp C "quit"'],
        ['ftp O "bye"'],
    ]


def test_ftp_error_frame_and_long_text_is_cut():
    flow = Flow()
    flow.handshake()
    flow.send("s", DATA, ftp.encode(ftp.Error("not-found", "no file " + "x" * 100)))
    (row,) = data_rows(rows_of(flow, "ftp"))
    assert notes(row)[0].startswith('ftp E "not-found: no file xxx') and notes(row)[0].endswith('"...')


def test_echo_lines():
    flow = Flow(server=("10.99.0.10", 7007))
    flow.handshake()
    flow.send("c", DATA, b"hello\nwor")
    flow.send("c", DATA, b"ld\n")
    flow.send("s", DATA, b"HELLO\nWORLD\n")
    rows = data_rows(rows_of(flow, "echo"))
    assert [notes(r) for r in rows] == [['echo line "hello"'], ['echo line "world"'],
                                        ['echo line "HELLO"', 'echo line "WORLD"']]


def test_shell_length_framing_is_the_default_without_a_hello():
    flow = Flow(server=("10.99.0.10", 2222))
    flow.handshake()
    flow.send("c", DATA, shell.encode_command("echo hi"))
    flow.send("s", DATA, shell.encode_result(shell.Result(b"hi\n", b"", 0)))
    rows = data_rows(rows_of(flow, "shell"))
    assert notes(rows[0]) == ['shell command "echo hi"']
    assert notes(rows[1]) == ["shell length reply out=3 err=0 status=0"]


def test_shell_ack_framing_length_alone_then_output():
    flow = Flow(server=("10.99.0.10", 2222))
    flow.handshake()
    flow.send("c", DATA, shell.hello("ack") + shell.encode_command("echo hi"))
    flow.send("s", DATA, b"3")
    flow.send("c", DATA, shell.ACK)
    flow.send("s", DATA, b"hi\n")
    rows = data_rows(rows_of(flow, "shell"))
    assert [notes(r) for r in rows] == [
        ["shell framing ack", 'shell command "echo hi"'],
        ["shell ack length=3 (alone: the server waits for ack)"],
        ["shell ack (send the output)"],
        ['shell ack output 3 bytes "hi\\n"'],
    ]


def test_shell_naive_framing_finds_the_length_glued_to_a_digit():
    flow = Flow(server=("10.99.0.10", 2222))
    flow.handshake()
    flow.send("c", DATA, shell.hello("naive") + shell.encode_command("printf 7"))
    flow.send("s", DATA, b"17")  # length 1, then the output "7": what the tutorials' client misreads as 17
    (_, reply) = data_rows(rows_of(flow, "shell"))
    assert notes(reply)[0].startswith('shell naive reply length=1 "7"')


def test_udp_pings_are_named_per_datagram():
    def datagram(src, dst, payload):
        header = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0)
        return ethernet(ipv4(src[0], dst[0], 17, header + payload))

    client, server = ("10.99.0.20", 5555), ("10.99.0.10", 9999)
    ping = udp.encode(udp.Ping(3, 1000, padding=8))
    packets = list(read_packets(pcap([(1.0, datagram(client, server, ping)), (1.001, datagram(server, client, ping)),
                                      (1.002, datagram(client, server, b"hello"))])))
    rows, conversations = build(packets, "udp")
    assert len(conversations) == 1 and [r.from_client for r in rows] == [True, False, True]
    assert notes(rows[0]) == ["udp ping seq=3, 24 bytes"]
    assert notes(rows[2]) == ["udp 5 bytes: b'hello'"]
    assert "UDP         len=24  udp ping seq=3" in render(rows, conversations, "udp")


def test_http_get_and_head_on_one_connection():
    flow = Flow(server=("10.99.0.10", 8080))
    flow.handshake()
    flow.send("c", DATA, http.encode(http.Request("GET", "/index.html", http.Headers([("Host", "server")]))))
    body = b"<html>" + b"x" * 100
    head = http.encode(http.Response(200, http.Headers([("Content-Length", str(len(body)))])))
    flow.send("s", DATA, head + body[:50])
    flow.send("s", DATA, body[50:])
    flow.send("c", DATA, http.encode(http.Request("HEAD", "/index.html", http.Headers([("Host", "server")]))))
    flow.send("s", DATA, head)  # the same Content-Length, and no body: the decoder knew it was HEAD
    rows = data_rows(rows_of(flow, "http"))
    assert [notes(r) for r in rows] == [
        ["http GET /index.html"],
        ["http 200 OK len=106", "http body 50 bytes"],
        ["http end of response, body 106 bytes"],
        ["http HEAD /index.html"],
        ["http 200 OK len=106", "http end of response, body 0 bytes"],
    ]


def test_http_body_until_close_ends_at_the_servers_fin():
    flow = Flow(server=("10.99.0.10", 8080))
    flow.handshake()
    flow.send("c", DATA, b"GET / HTTP/1.0\r\n\r\n")
    flow.send("s", DATA, b"HTTP/1.0 200 OK\r\n\r\nhello")
    flow.send("s", 0x01 | ACK)  # FIN
    rows = rows_of(flow, "http")
    assert notes(rows[-2]) == ["http 200 OK body until close", "http body 5 bytes"]
    assert notes(rows[-1]) == ["http end of response, body 5 bytes"]


# -- what a student sees ----------------------------------------------------------


def test_an_undecodable_stream_is_a_note_not_a_crash():
    flow = Flow()
    flow.handshake()
    flow.send("c", DATA, b"hello, this is not ftp")
    flow.send("c", DATA, b"more of it")
    flow.send("s", DATA, ftp.encode(ftp.Ok("ready")))  # the other direction still decodes
    rows = data_rows(rows_of(flow, "ftp"))
    assert notes(rows[0])[0].startswith("undecodable: ftp client->server: RemoteProtocolError: unknown frame kind")
    assert notes(rows[1]) == []  # said once: after an error there is no message boundary to trust
    assert notes(rows[2]) == ['ftp O "ready"']


def test_without_an_exercise_the_packets_are_shown_undecoded():
    flow = Flow()
    flow.handshake()
    flow.send("c", DATA, ftp.encode(ftp.Command("ls")))
    text = timeline_text(flow.packets(), "nosuch")
    assert "no decoder for 'nosuch'" in text and "len=7" in text and "ftp C" not in text


def big_transfer(segments: int = 200, size: int = 1448) -> Flow:
    flow = Flow(step=0.0001)
    flow.handshake()
    flow.send("c", DATA, ftp.encode(ftp.Command("get big.bin")))
    total = segments * size
    body = bytes(total)
    flow.send("s", DATA, ftp.encode(ftp.FileHeader(total)))
    for i in range(segments):  # the body, each segment ACKed as a receiver would
        flow.send("s", ACK, body[i * size : (i + 1) * size])
        flow.send("c", ACK)
    flow.send("s", DATA, ftp.encode(ftp.Digest(bytes(32))))
    flow.close()
    return flow


def test_a_long_transfer_is_collapsed_to_its_ends_and_a_count():
    rows, conversations = build(big_transfer().packets(), "ftp")
    shown = collapse(rows)
    (run,) = [item for item in shown if isinstance(item, Run)]
    assert len(shown) < 30 < len(rows)
    # Every row is either shown or inside the run; none is lost or shown twice.
    assert sum(len(i.rows) if isinstance(i, Run) else 1 for i in shown) == len(rows)
    last_body = next(r for r in rows if any("end of the" in n for n in notes(r)))
    assert last_body in shown  # the end of the file is a message: always shown
    text = render(shown, conversations, "ftp")
    assert f"... {run.data_segments} data segments ({run.bytes} bytes) and " in text
    assert "ftp F size=289600 sha256" in text and "ftp D 0000000000000000..." in text
    assert len(text.splitlines()) == len(shown) + 2  # + the title and the one conversation


def test_a_short_run_is_not_collapsed():
    rows, _ = build(big_transfer(segments=2).packets(), "ftp")
    assert all(not isinstance(i, Run) for i in collapse(rows))


def test_many_messages_on_one_packet_are_counted_not_all_listed():
    flow = Flow(server=("10.99.0.10", 7007))
    flow.handshake()
    flow.send("c", DATA, b"a\n" * 10)
    text = timeline_text(flow.packets(), "echo")
    assert text.count('echo line "a"') == timeline.MAX_NOTES and "(+6 more messages)" in text


def test_command_line_prints_the_timeline_and_writes_the_svg(tmp_path, capsys):
    path = tmp_path / "capture.pcap"
    path.write_bytes(pcap(big_transfer(segments=20).frames).getvalue())
    args = argparse.Namespace(pcap=str(path), exercise="ftp", svg=str(tmp_path / "out.svg"), full=False)
    assert timeline.main(args) == 0
    out = capsys.readouterr().out
    assert 'ftp C "get big.bin"' in out and "data segments" in out
    assert (tmp_path / "out.svg").read_text().startswith("<svg")
    parser = argparse.ArgumentParser()
    timeline.add_arguments(parser)
    assert parser.parse_args([str(path), "--exercise", "ftp", "--full"]).full


def test_capture_report_prints_timeline_and_summary_and_draws_beside_the_pcap(tmp_path, capsys):
    path = tmp_path / "capture.pcap"
    flow = Flow()
    flow.handshake()
    flow.send("c", DATA, ftp.encode(ftp.Command("ls")))
    flow.close()
    path.write_bytes(pcap(flow.frames).getvalue())
    assert capture.report(path, "ftp") == 0
    out = capsys.readouterr().out
    assert 'ftp C "ls"' in out and "from SYN to first data" in out and "windows advertised" in out
    assert (tmp_path / "capture.svg").is_file()


def test_capture_report_on_a_broken_file_says_so(tmp_path, capsys):
    path = tmp_path / "capture.pcap"
    path.write_bytes(b"not a capture at all, not even close")
    assert capture.report(path, "ftp") == 1
    assert "cannot read the capture" in capsys.readouterr().out



def test_message_cutter_finds_ftp_message_ends():
    from socklab.ftp import protocol as p
    from socklab.inspector.decoders import MessageCutter, streams_for

    _, down = streams_for("ftp")
    cutter = MessageCutter(down)
    ok = p.HEADER.pack(b"O", 5) + b"ready"
    pieces = cutter.cut(ok + ok[:3])
    assert pieces == [(ok, True), (ok[:3], False)]
    assert cutter.cut(ok[3:]) == [(ok[3:], True)]


def test_message_cutter_on_echo_lines():
    from socklab.inspector.decoders import MessageCutter, streams_for

    up, _ = streams_for("echo")
    assert MessageCutter(up).cut(b"a\nbc\nd") == [(b"a\n", True), (b"bc\n", True), (b"d", False)]


def test_message_cutter_sends_a_naive_shell_length_alone():
    # frames= is the tutorials' network: their server sends the length with a send() of its own.
    from socklab.inspector.decoders import MessageCutter, streams_for

    up, down = streams_for("shell")
    MessageCutter(up).cut(b"framing naive\necho hi\n")
    cutter = MessageCutter(down)
    assert cutter.cut(b"3hi\n") == [(b"3", True), (b"hi\n", True)]
    assert cutter.cut(b"14h\xc3\xa9llo w\xc3\xb6rld\n") == [(b"14", True), (b"h\xc3\xa9llo w\xc3\xb6rld\n", True)]
    # Across writes: the length is cut in the first; the reply ends in the last.
    assert cutter.cut(b"1000abc") == [(b"1000", True), (b"abc", False)]
    assert cutter.cut(b"x" * 997) == [(b"x" * 997, True)]
