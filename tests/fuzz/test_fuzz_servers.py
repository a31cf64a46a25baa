"""Each server, as a real process on loopback, against fuzzed input (see harness.py).

`make test` sends a fixed-seed sample (a few hundred inputs per server);
`make fuzz` sets SOCKLAB_FUZZ_INPUTS=100000.
"""

from __future__ import annotations

import pytest

import harness
import targets


@pytest.mark.parametrize("name", targets.EXERCISES)
def test_server_survives_fuzzing_and_still_answers_right(name, tmp_path):
    with targets.fuzzed(name, tmp_path) as (server, target):
        report = harness.run(server, target)
        harness.assert_survived(server, target, report)
