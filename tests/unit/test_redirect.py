"""How a lab's IMPAIR and LOSS become the proxy's options and the redirect."""

from __future__ import annotations

import pytest

from socklab.inspector.redirect import PROXY_PORT_OFFSET, proxy_arguments, redirect_rule


@pytest.mark.parametrize("impair, loss, expected", [
    ("slicer", "", ["--scenario", "slicer"]),
    ("delay=50ms,jitter=10ms", "", ["--impair", "delay=50ms,jitter=10ms"]),
    ("", "0.2", ["--impair", "loss=0.2"]),
    ("lossy", "0.3", ["--scenario", "lossy", "--impair", "loss=0.3"]),  # LOSS amends the scenario
    ("delay=5ms", "0.1", ["--impair", "delay=5ms,loss=0.1"]),
    ("", "", []),
])
def test_impair_and_loss_become_proxy_options(impair, loss, expected):
    assert proxy_arguments(impair, loss) == expected


def test_the_redirect_sends_what_arrives_on_eth0_for_the_port_to_the_proxy():
    rule = redirect_rule("-A", "udp", 9999)
    assert rule[:5] == ["iptables", "-t", "nat", "-A", "PREROUTING"]
    assert rule[rule.index("-i") + 1] == "eth0"  # not lo: the proxy's own relay must reach the server
    assert rule[rule.index("-p") + 1] == "udp" and rule[rule.index("--dport") + 1] == "9999"
    assert rule[-1] == str(9999 + PROXY_PORT_OFFSET)
    assert redirect_rule("-D", "udp", 9999)[3] == "-D"
