"""Confining a client-supplied name to the folder a server serves.

Shared by every server that hands out files. The check is on the resolved
path (symlinks followed), so a link inside the folder that points outside it
is refused like ``../`` is.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path, PurePosixPath

MAX_NAME = 1024
#: Linux's limits, in bytes: one part of a path (ext4, xfs, tmpfs...), and a
#: whole path. Past them every file call fails (ENAMETOOLONG), and that is
#: better said as a refusal than met as an error in the middle of a request.
NAME_MAX = 255
PATH_MAX = 4096


class PathRefused(ValueError):
    """The name would leave the served folder, or is not a usable name."""


@functools.lru_cache(maxsize=64)
def _real_root(root: str) -> str:
    # A server's folder does not move while it serves; resolving it again on
    # every request was a third of an HTTP request's time in Python.
    return os.path.realpath(root)


def resolve_inside(root: str | os.PathLike, name: str) -> Path:
    """The real path of ``name`` under ``root``, or ``PathRefused``."""
    if not name:
        raise PathRefused("a name is needed")
    if len(name) > MAX_NAME:
        raise PathRefused(f"name is longer than {MAX_NAME} characters")
    if "\0" in name:
        raise PathRefused("name contains a NUL byte")
    if any(ch in name for ch in "\r\n"):
        raise PathRefused("name contains a line break")
    if name.startswith("/"):
        raise PathRefused("absolute paths are not allowed; names are relative to the served folder")
    if ".." in PurePosixPath(name).parts:
        raise PathRefused("'..' is not allowed in a name")
    real_root = _real_root(os.fspath(root))
    target = os.path.realpath(os.path.join(real_root, name))
    if target != real_root and not target.startswith(real_root + os.sep):
        raise PathRefused("name leads outside the served folder (through a symbolic link)")
    encoded = os.fsencode(target)
    if len(encoded) >= PATH_MAX:
        raise PathRefused(f"the path is {len(encoded)} bytes long, the limit is {PATH_MAX - 1}")
    if any(len(part) > NAME_MAX for part in encoded.split(b"/")):
        raise PathRefused(f"a part of the name is longer than {NAME_MAX} bytes")
    return Path(target)
