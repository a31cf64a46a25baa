"""Sample files: reproducible content, so a lab can state their digest in advance."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from socklab.samples import parse_size, sample_digest, write_sample

LABS = Path(__file__).resolve().parents[2] / "labs"


@pytest.mark.parametrize("text, size", [("0", 0), ("512", 512), ("64KiB", 65536), ("16MiB", 16 << 20), ("1G", 1 << 30)])
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "12 parsecs", "-1", "1.5MiB"])
def test_parse_size_refuses_what_is_not_a_size(text):
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


def test_written_sample_has_the_announced_size_and_digest(tmp_path):
    size = (1 << 20) * 2 + 123  # more than one block, not a multiple of one
    path = tmp_path / "s.bin"
    write_sample(path, size)
    data = path.read_bytes()
    assert len(data) == size
    assert hashlib.sha256(data).hexdigest() == sample_digest("s.bin", size)


def test_samples_of_different_names_differ():
    assert sample_digest("a.bin", 1000) != sample_digest("b.bin", 1000)


def test_the_ftp_scenario_states_the_digest_of_the_file_the_server_generates():
    lab = (LABS / "ftp" / "lab.toml").read_text()
    scenario = (LABS / "ftp" / "scenario.ftp").read_text()
    name, size = re.search(r'"--generate", "([^=]+)=([^"]+)"', lab).groups()
    stated = re.search(rf"^check {re.escape(name)} ([0-9a-f]{{64}})$", scenario, re.M).group(1)
    assert stated == sample_digest(name, parse_size(size))
