"""The sequence diagram: well-formed SVG, one arrow per line of the timeline."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from test_pcap import Flow, pcap
from test_timeline import DATA, big_transfer

from socklab.ftp import protocol as ftp
from socklab.inspector.pcap import RST, read_packets
from socklab.inspector.svg import sequence_diagram
from socklab.inspector.timeline import Row, Run, build, collapse



def arrows(svg: str, kind: str) -> list[ET.Element]:
    root = ET.fromstring(svg)  # raises if the document is not well-formed XML
    return [line for line in root.iter("{http://www.w3.org/2000/svg}line") if kind in line.get("class", "").split()]


def test_one_arrow_per_shown_packet_and_one_per_collapsed_run():
    rows, conversations = build(big_transfer().packets(), "ftp")
    shown = collapse(rows)
    svg = sequence_diagram(shown, conversations)
    assert len(arrows(svg, "packet")) == sum(isinstance(i, Row) for i in shown)
    assert len(arrows(svg, "run")) == sum(isinstance(i, Run) for i in shown) == 1
    assert len(arrows(svg, "lifeline")) == 2


def test_handshake_close_and_direction_are_drawn():
    rows, conversations = build(big_transfer(segments=2).packets(), "ftp")
    svg = sequence_diagram(collapse(rows), conversations)
    packets = arrows(svg, "packet")
    assert [a.get("class") for a in packets[:3]] == ["packet handshake"] * 3
    assert [a.get("class") for a in packets[-3:]] == ["packet close"] * 3
    syn, syn_ack = packets[:2]
    assert float(syn.get("x1")) < float(syn.get("x2"))  # client (left) to server
    assert float(syn_ack.get("x1")) > float(syn_ack.get("x2"))
    assert 'ftp C "get big.bin"' in svg and "handshake 1/3" in svg


def test_text_from_the_wire_is_escaped():
    flow = Flow(server=("10.99.0.10", 7007))
    flow.handshake()
    flow.send("c", DATA, b"<script>&</script>\n")
    flow.send("s", RST)
    rows, conversations = build(flow.packets(), "echo")
    svg = sequence_diagram(collapse(rows), conversations, title="a <lab> & more")
    assert arrows(svg, "reset")  # parses, and the reset is drawn as one
    assert "&lt;script&gt;&amp;" in svg


def test_several_conversations_are_numbered_on_the_arrows():
    first = Flow()
    first.handshake()
    first.send("c", DATA, ftp.encode(ftp.Command("ls")))
    second = Flow(client=("10.99.0.20", 40001), start=1.5)
    second.handshake()
    rows, conversations = build(list(read_packets(pcap(first.frames + second.frames))), "ftp")
    svg = sequence_diagram(collapse(rows), conversations)
    assert "client (2 endpoints)" in svg and "#2 [SYN]" in svg
    assert len(arrows(svg, "packet")) == len(rows)


def test_an_empty_capture_is_still_a_picture():
    ET.fromstring(sequence_diagram([], []))
