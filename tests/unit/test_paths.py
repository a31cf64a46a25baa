"""Confinement of client-supplied names to the served folder."""

from __future__ import annotations

import os

import pytest

from socklab.paths import PathRefused, resolve_inside


@pytest.fixture
def root(tmp_path):
    served = tmp_path / "served"
    (served / "sub").mkdir(parents=True)
    (served / "a.txt").write_text("a")
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path / "secret.txt", served / "out-link")
    os.symlink(tmp_path, served / "out-dir")
    os.symlink(served / "a.txt", served / "in-link")
    return served


@pytest.mark.parametrize(
    "name, reason",
    [
        ("", "a name is needed"),
        ("../secret.txt", "'..'"),
        ("sub/../../secret.txt", "'..'"),
        ("/etc/passwd", "absolute"),
        ("a\0b", "NUL"),
        ("a\nb", "line break"),
        ("out-link", "outside"),
        ("out-dir/secret.txt", "outside"),
        ("x" * 2000, "longer than"),
        # Found by fuzzing: such names made Path.is_dir() raise ENAMETOOLONG, and
        # the http and ftp servers closed the connection without an answer.
        ("x" * 256, "longer than 255 bytes"),
        ("sub/" + "\u00e9" * 128, "longer than 255 bytes"),
    ],
)
def test_names_that_leave_the_folder_are_refused(root, name, reason):
    with pytest.raises(PathRefused, match=reason):
        resolve_inside(root, name)


def test_a_path_over_path_max_is_refused(tmp_path):
    root = tmp_path / ("r" * 200)
    root.mkdir()
    name = ("\U0001d521" * 63 + "/") * 15 + "\U0001d521" * 63  # 1023 characters, 4047 bytes
    with pytest.raises(PathRefused, match="limit is 4095"):
        resolve_inside(root, name)


@pytest.mark.parametrize("name, target", [("a.txt", "a.txt"), ("sub/new.bin", "sub/new.bin"), ("in-link", "a.txt"),
                                          ("./a.txt", "a.txt"), ("..a", "..a")])
def test_names_inside_the_folder_resolve_to_their_real_path(root, name, target):
    assert resolve_inside(root, name) == (root / target).resolve()
