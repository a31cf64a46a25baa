"""The udp ping format and the ping summary, without a network.

A datagram arrives whole or not at all, so there is no split-by-byte case
here (unlike the TCP exercises): what can go wrong is a datagram that is
short, not a ping, or arrives twice, late or overtaken -- all fed by hand.
"""

from __future__ import annotations

import pytest

from socklab.framing import LocalProtocolError, RemoteProtocolError
from socklab.udp import protocol as p
from socklab.udp.server import Dropper
from socklab.udp.stats import DUPLICATE, NEW, OUT_OF_ORDER, UNEXPECTED, PingStats


def test_header_layout_is_magic_then_big_endian_sequence_and_time():
    assert p.encode(p.Ping(1, 2)) == b"PING" + (1).to_bytes(4, "big") + (2).to_bytes(8, "big")
    assert p.HEADER.size == 16


@pytest.mark.parametrize("size", [16, 17, 100, 1472, 65507])
def test_sized_pings_round_trip(size):
    data = p.encode_sized(7, 123456789, size)
    assert len(data) == size
    assert p.decode(data) == p.Ping(7, 123456789, size - 16)
    assert data[16:32] == p.PAD_PATTERN[: size - 16]


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "0 bytes is too short"),
        (b"PING\x00\x00\x00\x01", "8 bytes is too short"),
        (b"hello, world, this is text\n", "not a ping"),
        (b"\xff" * 16, "not a ping"),
    ],
)
def test_short_or_foreign_datagrams_raise_remote_protocol_errors(data, message):
    with pytest.raises(RemoteProtocolError, match=message):
        p.decode(data)


@pytest.mark.parametrize("ping", [p.Ping(-1, 0), p.Ping(2**32, 0), p.Ping(0, 2**64), p.Ping(0, 0, -1)])
def test_encode_refuses_what_does_not_fit_the_header(ping):
    with pytest.raises(LocalProtocolError):
        p.encode(ping)


def test_a_size_below_the_header_is_refused():
    with pytest.raises(LocalProtocolError, match="at least 16 bytes"):
        p.encode_sized(0, 0, 15)


def test_describe_never_raises_and_names_pings():
    assert p.describe(p.encode_sized(3, 0, 40)) == "ping seq=3, 40 bytes"
    assert p.describe(b"hi\n") == "3 bytes: b'hi\\n'"
    assert p.describe(b"x" * 100).endswith("...")
    assert p.describe(b"") == "0 bytes: b''"


def replay(sent: int, replies: list[int]) -> tuple[PingStats, list[str]]:
    stats = PingStats()
    for _ in range(sent):
        stats.on_sent()
    return stats, [stats.on_reply(seq, 0.001 * (seq + 1)) for seq in replies]


def test_in_order_replies_with_one_missing():
    stats, verdicts = replay(5, [0, 1, 3, 4])
    assert verdicts == [NEW] * 4
    assert (stats.received, stats.lost, stats.duplicates, stats.out_of_order) == (4, 1, 0, 0)
    assert stats.lost_sequences == [2]


def test_duplicates_count_once_and_are_not_received_twice():
    stats, verdicts = replay(3, [0, 0, 1, 2, 2, 2])
    assert verdicts == [NEW, DUPLICATE, NEW, NEW, DUPLICATE, DUPLICATE]
    assert (stats.received, stats.lost, stats.duplicates) == (3, 0, 3)
    assert stats.rtts[0] == 0.001  # the first copy's RTT, not the duplicate's


def test_overtaken_replies_are_out_of_order_but_received():
    stats, verdicts = replay(5, [0, 2, 1, 4, 3])
    assert verdicts == [NEW, NEW, OUT_OF_ORDER, NEW, OUT_OF_ORDER]
    assert (stats.received, stats.lost, stats.out_of_order) == (5, 0, 2)


def test_a_late_duplicate_of_an_overtaken_reply_is_only_a_duplicate():
    stats, verdicts = replay(3, [2, 0, 0])
    assert verdicts == [NEW, OUT_OF_ORDER, DUPLICATE]
    assert (stats.received, stats.lost, stats.out_of_order, stats.duplicates) == (2, 1, 1, 1)


def test_replies_never_sent_are_unexpected():
    stats, verdicts = replay(2, [5, -1, 1])
    assert verdicts == [UNEXPECTED, UNEXPECTED, NEW]
    stats.on_garbage()
    assert (stats.received, stats.lost, stats.unexpected) == (1, 1, 3)


def test_the_loss_figure_depends_only_on_which_replies_came():
    a, _ = replay(6, [0, 2, 5, 3])
    b, _ = replay(6, [5, 3, 3, 2, 0])
    assert (a.lost, a.lost_sequences) == (b.lost, b.lost_sequences) == (2, [1, 4])


def test_rtt_figures_and_report():
    stats, _ = replay(4, [0, 1, 2])  # rtts 1, 2, 3 ms
    low, avg, high, dev = stats.rtt_ms()
    assert (low, avg, high) == pytest.approx((1.0, 2.0, 3.0))
    assert dev == pytest.approx((2 / 3) ** 0.5)
    report = stats.report("server:9999")
    assert "4 sent, 3 received, 1 lost (25.0% loss), 0 duplicates, 0 out of order" in report
    assert "rtt min/avg/max/stddev = 1.000/2.000/3.000/0.816 ms" in report
    assert report.endswith("lost: seq 3")


def test_nothing_back_has_no_rtt_line():
    stats, _ = replay(2, [])
    assert stats.rtt_ms() is None
    assert "2 lost (100.0% loss)" in stats.report("x") and "rtt" not in stats.report("x")


def test_the_dropper_replays_the_same_drops_for_each_peer():
    dropper = Dropper(0.3, seed=50)
    first = [dropper.should_drop("a") for _ in range(20)]
    interleaved = [dropper.should_drop(peer) for _ in range(20) for peer in ("b", "c")]
    assert first == interleaved[0::2] == interleaved[1::2]
    assert sum(first) == 6  # the seed labs/udp/lab.toml relies on


def test_the_dropper_forgets_the_oldest_peer_beyond_its_bound():
    dropper = Dropper(0.5, seed=1)
    dropper.max_peers = 2
    for peer in ("a", "b", "c"):
        dropper.should_drop(peer)
    assert list(dropper._streams) == ["b", "c"]


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_the_dropper_refuses_a_fraction_outside_0_1(fraction):
    with pytest.raises(ValueError, match="between 0 and 1"):
        Dropper(fraction)


def test_no_drop_fraction_drops_nothing_and_1_drops_everything():
    assert not any(Dropper(0.0, 1).should_drop("a") for _ in range(50))
    assert all(Dropper(1.0, 1).should_drop("a") for _ in range(50))
