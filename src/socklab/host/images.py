"""Building socklab's images from whatever this machine can reach.

    socklab/base             Debian bookworm + python3, iproute2, procps
        <- images/base/Dockerfile (FROM debian:bookworm-slim) if a registry answers
        <- images/base/bootstrap.sh (debootstrap + docker import) if none does
    socklab/inspector-base   base + tcpdump, strace          images/inspector/
    socklab/lab              base + the socklab package      images/role/  (server, client)
    socklab/inspector        inspector-base + the package    images/role/

Each image is tagged with a hash of its inputs and of its parent, and built
only when no image carries that tag yet: unchanged inputs cost nothing, and a
change to the code rebuilds only the two small role images.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import docker
import docker.errors

from socklab.host.paths import REPO_ROOT

IMAGES_DIR = REPO_ROOT / "images"
PACKAGE_DIR = REPO_ROOT / "src" / "socklab"
REGISTRY_BASE = "debian:bookworm-slim"
IMAGE_LABEL = "org.socklab.image"



class ImageError(RuntimeError):
    pass


@dataclass(frozen=True)
class Images:
    base: str
    inspector_base: str
    lab: str
    inspector: str


def _say(message: str) -> None:
    print(f"images: {message}", flush=True)


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def package_files() -> list[Path]:
    """The package as it goes into the containers: without the host side."""
    return [p for p in _files(PACKAGE_DIR) if p.relative_to(PACKAGE_DIR).parts[0] != "host" and p.suffix != ".pyc"]


def inputs_hash(files: Iterable[Path], *parents: str) -> str:
    h = hashlib.sha256()
    for parent in parents:
        h.update(parent.encode() + b"\0")
    for path in files:
        h.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def _exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def _tag_latest(client: docker.DockerClient, tag: str) -> None:
    repository = tag.rsplit(":", 1)[0]
    client.images.get(tag).tag(repository, "latest")


def _stream_build(client: docker.DockerClient, what: str, **kwargs) -> None:
    """Run a build, showing its steps; on failure, its last lines and the error."""
    tail: list[str] = []
    for chunk in client.api.build(decode=True, rm=True, forcerm=True, **kwargs):
        if "error" in chunk:
            detail = "".join(tail[-20:])
            raise ImageError(f"building {what} failed: {chunk['error'].strip()}\n{detail}")
        line = chunk.get("stream", "")
        if line:
            tail.append(line)
            if line.startswith("Step "):
                _say(f"{what}: {line.strip()}")


def _registry_answers(client: docker.DockerClient) -> tuple[bool, str]:
    if _exists(client, REGISTRY_BASE):
        return True, f"{REGISTRY_BASE} is already here"
    try:
        client.images.pull(REGISTRY_BASE)
        return True, f"pulled {REGISTRY_BASE}"
    except (docker.errors.APIError, docker.errors.DockerException) as exc:
        reason = getattr(exc, "explanation", None) or str(exc)
        return False, reason.splitlines()[0][:160]


def debian_mirror() -> str:
    """The Debian mirror the host's apt uses, so a bootstrap goes where apt already can."""
    if os.environ.get("SOCKLAB_DEBIAN_MIRROR"):
        return os.environ["SOCKLAB_DEBIAN_MIRROR"]
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for source in sources:
        try:
            text = source.read_text()
        except OSError:
            continue
        for uri in re.findall(r"(?:^deb\s+(?:\[[^\]]*\]\s+)?|^URIs:\s*)(\S+)", text, re.M):
            if "/debian" in uri and "security" not in uri:
                return uri.rstrip("/")
    return "http://deb.debian.org/debian"


def _ensure_debootstrap() -> None:
    if shutil.which("debootstrap"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        _say("installing debootstrap (apt-get install debootstrap)")
        subprocess.run(["apt-get", "install", "-y", "-q", "debootstrap"], check=True, stdout=subprocess.DEVNULL)
        return
    raise ImageError("no container registry answers and debootstrap is not installed: "
                     "install it (sudo apt-get install debootstrap) and run again")


def _bootstrap_base(tag: str) -> None:
    if os.geteuid() != 0:
        raise ImageError("no container registry answers, so the base image must be bootstrapped with debootstrap, "
                         "which needs root: run `sudo make images` once, then carry on as yourself")
    _ensure_debootstrap()
    mirror = debian_mirror()
    _say(f"base: bootstrapping Debian bookworm from {mirror} (under a minute)")
    result = subprocess.run([str(IMAGES_DIR / "base" / "bootstrap.sh"), tag, mirror])
    if result.returncode != 0:
        raise ImageError(f"bootstrapping the base image failed (exit {result.returncode})")


def build_base(client: docker.DockerClient, tag: str) -> None:
    choice = os.environ.get("SOCKLAB_BASE_PATH", "auto")
    if choice not in ("auto", "dockerfile", "bootstrap"):
        raise ImageError(f"SOCKLAB_BASE_PATH={choice!r}: expected auto, dockerfile or bootstrap")
    if choice == "auto":
        answers, why = _registry_answers(client)
        choice = "dockerfile" if answers else "bootstrap"
        _say(f"base: {'a registry answers' if answers else 'no registry answers'} ({why}) -> the {choice} path")
    else:
        _say(f"base: the {choice} path (SOCKLAB_BASE_PATH)")
    if choice == "dockerfile":
        _stream_build(client, "base", path=str(IMAGES_DIR / "base"), tag=tag, labels={IMAGE_LABEL: "base"})
    else:
        _bootstrap_base(tag)


def _role_context(base: str) -> io.BytesIO:
    """A build context of just the role Dockerfile and the package."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(IMAGES_DIR / "role" / "Dockerfile", arcname="Dockerfile")
        for path in package_files():
            tar.add(path, arcname=str(Path("socklab") / path.relative_to(PACKAGE_DIR)))
    buffer.seek(0)
    return buffer


def ensure_images(client: docker.DockerClient | None = None) -> Images:
    """Build whatever image is missing or out of date; return the tags to use."""
    client = client or docker.from_env()
    base_files = _files(IMAGES_DIR / "base")
    role_files = [*_files(IMAGES_DIR / "role"), *package_files()]
    base = f"socklab/base:{inputs_hash(base_files)}"
    inspector_base = f"socklab/inspector-base:{inputs_hash(_files(IMAGES_DIR / 'inspector'), base)}"
    images = Images(
        base=base,
        inspector_base=inspector_base,
        lab=f"socklab/lab:{inputs_hash(role_files, base)}",
        inspector=f"socklab/inspector:{inputs_hash(role_files, inspector_base)}",
    )
    if not _exists(client, base):
        build_base(client, base)
    if not _exists(client, inspector_base):
        _stream_build(client, "inspector-base", path=str(IMAGES_DIR / "inspector"), tag=inspector_base,
                      buildargs={"BASE": base}, labels={IMAGE_LABEL: "inspector-base"})
    for tag, parent, name in ((images.lab, base, "lab"), (images.inspector, inspector_base, "inspector")):
        if not _exists(client, tag):
            _stream_build(client, name, fileobj=_role_context(parent), custom_context=True, tag=tag,
                          buildargs={"BASE": parent}, labels={IMAGE_LABEL: name})
    for tag in (images.base, images.inspector_base, images.lab, images.inspector):
        _tag_latest(client, tag)
    _say(f"ready: {images.lab}, {images.inspector}")
    return images
