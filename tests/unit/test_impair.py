"""Impairment specs, scenarios and seeded decisions: pure, no sockets."""

from __future__ import annotations

import pytest

from socklab.inspector import impair
from socklab.inspector.impair import Decider, Impairment, ImpairmentError, cut_at, parse, scenario, segments


def test_tcp_spec():
    imp = parse("delay=50ms,jitter=10ms,rate=1mbit,slice=16:5ms", seed=7)
    assert imp.delay == pytest.approx(0.05)
    assert imp.jitter == pytest.approx(0.01)
    assert imp.rate == pytest.approx(125_000)  # bytes per second
    assert (imp.slice_size, imp.slice_gap) == (16, pytest.approx(0.005))
    assert imp.seed == 7


def test_udp_spec_fractions_and_percent():
    imp = parse("loss=0.2,dup=5%,reorder=0.1,delay=20ms")
    assert (imp.loss, imp.dup, imp.reorder) == (pytest.approx(0.2), pytest.approx(0.05), pytest.approx(0.1))
    assert imp.delay == pytest.approx(0.02)


@pytest.mark.parametrize("text, expected", [
    ("reset=4KiB", {"reset_after": 4096}),
    ("blackhole=100", {"blackhole_after": 100}),
    ("blackhole=0", {"blackhole_after": 0}),
    ("merge=1.5s", {"merge": 1.5}),
    ("slice=8", {"slice_size": 8, "slice_gap": impair.DEFAULT_SLICE_GAP}),
    ("rate=100kB", {"rate": 100_000}),
    ("rate=64kbit/s", {"rate": 8000}),
    ("delay=200us", {"delay": 0.0002}),
    ("dir=to-client", {"direction": "to-client"}),
    ("", {}),
    ("none", {}),
])
def test_single_settings(text, expected):
    imp = parse(text)
    for key, value in expected.items():
        assert getattr(imp, key) == pytest.approx(value) if isinstance(value, float) else getattr(imp, key) == value


@pytest.mark.parametrize("text, words", [
    ("delay=50", "50ms or 50s"),
    ("dela=5ms", "not a setting"),
    ("delay", "key=value"),
    ("loss=1.5", "from 0 to 1"),
    ("loss=abc", "from 0 to 1"),
    ("rate=fast", "a rate above 0"),
    ("rate=0mbit", "a rate above 0"),
    ("slice=0", "at least 1 byte"),
    ("slice=8:5", "a duration"),
    ("reset=-1", "a size in bytes"),
    ("dir=up", "both, to-server, to-client"),
])
def test_bad_specs_say_why(text, words):
    with pytest.raises(ImpairmentError, match=words):
        parse(text)


def test_scenarios_all_parse_and_have_a_name():
    for name in impair.SCENARIOS:
        imp = scenario(name, seed=3)
        assert imp.name == name and imp.seed == 3 and imp.active
    assert scenario("slicer").slice_size > 0
    assert scenario("merger").merge > 0
    assert scenario("lossy").loss > 0


def test_unknown_scenario():
    with pytest.raises(ImpairmentError, match="slicer"):
        scenario("nosuch")


def test_scenario_file(tmp_path):
    path = tmp_path / "shaky.impair"
    path.write_text("# a shaky link\nloss=0.3   # lose a lot\ndelay=10ms, dup=0.1\n")
    imp = scenario(str(path), seed=5)
    assert (imp.loss, imp.delay, imp.dup, imp.name) == (0.3, 0.01, 0.1, "shaky")
    path.write_text("loss=2\n")
    with pytest.raises(ImpairmentError, match="scenario file .*loss=2"):
        scenario(str(path))
    with pytest.raises(ImpairmentError, match="scenario file"):
        scenario(str(tmp_path / "missing.impair"))


def test_spec_overrides_a_scenario():
    imp = parse("slice=4:2ms", seed=1, base=scenario("slow", seed=1))
    assert imp.slice_size == 4 and imp.delay == pytest.approx(0.1)


@pytest.mark.parametrize("spec", ["delay=50ms,jitter=10ms,rate=1mbit,slice=16:5ms", "loss=0.2,dup=0.05,reorder=0.1",
                                  "merge=50ms,dir=to-client", "reset=4096", "blackhole=0", "none"])
def test_spec_round_trips(spec):
    imp = parse(spec, seed=9)
    assert parse(imp.spec(), seed=9) == imp


def test_describe_names_the_seed_and_spec():
    text = scenario("lossy", seed=50).describe()
    assert "lossy" in text and "--seed 50" in text and "20% lost" in text and "loss=0.2" in text
    assert "unchanged" in Impairment().describe()


def test_transport_checks():
    parse("slice=8").check("tcp")
    parse("loss=0.1").check("udp")
    with pytest.raises(ImpairmentError, match="TCP only"):
        parse("slice=8").check("udp")
    with pytest.raises(ImpairmentError, match="UDP only"):
        parse("loss=0.1").check("tcp")


def _fates(imp: Impairment, direction: str = "to-server", n: int = 200):
    decider = Decider(imp, direction)
    return [decider.datagram() for _ in range(n)]


def test_same_seed_same_decisions():
    imp = parse("loss=0.2,dup=0.1,reorder=0.1,delay=20ms,jitter=10ms", seed=50)
    assert _fates(imp) == _fates(imp)
    assert _fates(imp) != _fates(parse(imp.spec(), seed=51))


def test_loss_fraction_is_roughly_right_and_directions_differ():
    imp = parse("loss=0.2", seed=50)
    drops = [f.drop for f in _fates(imp, n=1000)]
    assert 100 < sum(drops) < 300
    assert drops != [f.drop for f in _fates(imp, "to-client", n=1000)]


def test_drops_do_not_depend_on_other_settings():
    # Four draws per datagram, whatever is set: adding dup keeps the same losses.
    plain = [f.drop for f in _fates(parse("loss=0.3", seed=4))]
    more = [f.drop for f in _fates(parse("loss=0.3,dup=0.5,reorder=0.2,delay=5ms,jitter=5ms", seed=4))]
    assert plain == more


def test_direction_off_passes_everything():
    imp = parse("loss=1,dir=to-client", seed=1)
    assert not any(f.drop for f in _fates(imp, "to-server"))
    assert all(f.drop for f in _fates(imp, "to-client"))


def test_jitter_stays_in_bounds_and_never_negative():
    decider = Decider(parse("delay=5ms,jitter=10ms", seed=2), "to-client")
    delays = [decider.delay() for _ in range(500)]
    assert all(0.0 <= d <= 0.015 + 1e-9 for d in delays)
    assert len(set(delays)) > 100


def test_fate_describe():
    assert impair.Fate(True, 1, False, 0.0).describe() == "DROPPED"
    assert impair.Fate(False, 1, False, 0.0).describe() == "passed"
    assert "DUPLICATED" in impair.Fate(False, 2, True, 0.02).describe()


def test_segments_and_cuts():
    assert segments(b"abcdefghij", 4) == [b"abcd", b"efgh", b"ij"]
    assert segments(b"abc", 0) == [b"abc"]
    assert cut_at(None, 10, b"abc") == (b"abc", False)
    assert cut_at(5, 3, b"abcd") == (b"ab", True)
    assert cut_at(5, 0, b"abcd") == (b"abcd", False)
    assert cut_at(4, 0, b"abcd") == (b"abcd", True)
    assert cut_at(0, 0, b"x") == (b"", True)
