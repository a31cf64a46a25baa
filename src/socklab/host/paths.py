"""Where the repository is, seen from the host side."""

from __future__ import annotations

import os
from pathlib import Path


def _find_root() -> Path:
    if os.environ.get("SOCKLAB_ROOT"):
        return Path(os.environ["SOCKLAB_ROOT"]).resolve()
    # src/socklab/host/paths.py -> the checkout (the Makefile installs socklab editable)
    for folder in Path(__file__).resolve().parents:
        if (folder / "docker-compose.yml").is_file() and (folder / "images").is_dir():
            return folder
    raise RuntimeError("cannot find the socklab checkout (docker-compose.yml, images/): set SOCKLAB_ROOT")


REPO_ROOT = _find_root()
LABS_DIR = REPO_ROOT / "labs"
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
