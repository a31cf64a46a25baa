"""Running a lab end to end: ``make lab-<name>`` and ``make up`` / ``make down``.

    1. build what is missing (socklab.host.images)
    2. compose up: server, client, inspector (capturing) on the lab network
    3. run the lab's steps (labs/<name>/lab.toml) in the client container
    4. stop the inspector: it flushes the capture and summarizes it
    5. print and save the transcript: client output, server log, summary
    6. compose down -- always: on success, failure, Ctrl-C or SIGTERM

Exit status 0 only when every step exited 0 and the capture was written.
"""

from __future__ import annotations

import codecs
import ipaddress
import os
import shlex
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker

from socklab import LABEL
from socklab.host.compose import PROJECT, Compose, ComposeError
from socklab.host.images import ImageError, ensure_images
from socklab.host.paths import LABS_DIR
from socklab.inspector.syscalls import annotate, without_trace

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib

DEFAULT_SUBNET = "10.99.0.0/24"
READY_TIMEOUT = 60.0


class LabError(RuntimeError):
    pass


@dataclass
class Step:
    title: str
    run: list[str]


@dataclass
class LabSpec:
    name: str
    title: str
    port: int
    server_args: list[str]
    steps: list[Step] = field(default_factory=list)
    capture_filter: str = ""  # tcpdump's filter; default: the lab's port
    transport: str = "tcp"  # what an impairment proxy relays

    @property
    def folder(self) -> Path:
        return LABS_DIR / self.name

    @property
    def out(self) -> Path:
        return self.folder / "out"

    @property
    def compose_override(self) -> Path | None:
        """labs/<name>/compose.yml, if the lab needs more than docker-compose.yml gives."""
        path = self.folder / "compose.yml"
        return path if path.is_file() else None


def available_labs() -> list[str]:
    return sorted(p.parent.name for p in LABS_DIR.glob("*/lab.toml"))


def load_lab(name: str) -> LabSpec:
    path = LABS_DIR / name / "lab.toml"
    if not path.is_file():
        raise LabError(f"no lab named {name!r} (labs: {', '.join(available_labs())})")
    data = tomllib.loads(path.read_text())
    steps = [Step(s["title"], list(s["run"])) for s in data.get("steps", [])]
    return LabSpec(name, data["title"], int(data["port"]), list(data.get("server_args", [])), steps,
                   data.get("capture_filter", ""), data.get("transport", "tcp"))


def lab_environment(spec: LabSpec, images=None) -> dict[str, str]:
    """The SOCKLAB_* variables docker-compose.yml reads."""
    subnet = ipaddress.ip_network(os.environ.get("SOCKLAB_SUBNET", DEFAULT_SUBNET))
    env = {
        "SOCKLAB_LAB": spec.name,
        "SOCKLAB_PORT": str(spec.port),
        "SOCKLAB_CAPTURE_FILTER": spec.capture_filter or f"port {spec.port}",
        "SOCKLAB_SERVER_ARGS": shlex.join(spec.server_args),
        "SOCKLAB_SUBNET": str(subnet),
        "SOCKLAB_SERVER_IP": str(subnet.network_address + 10),
        "SOCKLAB_CLIENT_IP": str(subnet.network_address + 20),
        "SOCKLAB_OWNER": f"{os.getuid()}:{os.getgid()}",
        "SOCKLAB_TRANSPORT": spec.transport,
        # `make lab-shell IMPAIR=slicer`, `make lab-udp LOSS=0.2 SEED=7`: make
        # exports command-line variables to the runner.
        "SOCKLAB_IMPAIR": impairment(spec, os.environ.get("IMPAIR", "")),
        "SOCKLAB_LOSS": os.environ.get("LOSS", ""),
        "SOCKLAB_SEED": os.environ.get("SEED", "1"),
        # TRACE=1: the server runs under strace from its first call; -yy names
        # each descriptor (TCP, UDP, file), -tt stamps the time, -f follows
        # threads; the trace goes to stderr, into the server's log.
        "SOCKLAB_SERVER_WRAPPER": "strace -f -tt -yy -qq -e trace=%network,close" if tracing() else "",
    }
    if images is not None:
        env["SOCKLAB_LAB_IMAGE"] = images.lab
        env["SOCKLAB_INSPECTOR_IMAGE"] = images.inspector
    return env


def impairment(spec: LabSpec, name: str) -> str:
    """IMPAIR as the inspector will read it: a lab's own scenario file, where
    labs/<lab>/<name>.impair exists (mounted at /lab), else as given."""
    if name and "=" not in name and (spec.folder / f"{name}.impair").is_file():
        return f"/lab/{name}.impair"
    return name


def tracing() -> bool:
    return os.environ.get("TRACE", "") not in ("", "0")


def running_labs(client: docker.DockerClient) -> set[str]:
    """Labs of this Compose project already up: they hold the lab network and its subnet.

    (Test containers carry the socklab label too, but on networks of their
    own: they do not stand in a lab's way.)
    """
    filters = {"label": [LABEL, f"com.docker.compose.project={PROJECT}"]}
    return {c.labels.get(LABEL, "?") for c in client.containers.list(all=True, filters=filters)}


def _containers(client: docker.DockerClient, service: str) -> list:
    return client.containers.list(all=True, filters={"label": [
        f"com.docker.compose.project={PROJECT}", f"com.docker.compose.service={service}"]})


def _service_logs(client: docker.DockerClient, service: str) -> str:
    return "".join(c.logs().decode(errors="replace") for c in _containers(client, service))


def _wait_for_log(client: docker.DockerClient, service: str, marker: str, timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker in _service_logs(client, service):
            return
        for container in _containers(client, service):
            container.reload()
            if container.status in ("exited", "dead"):
                raise LabError(f"the {service} stopped before it was ready; its log:\n{_service_logs(client, service)}")
        time.sleep(0.2)
    raise LabError(f"the {service} did not become ready within {timeout:.0f} s; its log:\n{_service_logs(client, service)}")


def _run_in(client: docker.DockerClient, service: str, argv: list[str]) -> tuple[int, str]:
    """Run ``argv`` in the service's container, showing the output live; (exit status, output).

    What `compose exec -T` does, through the Docker API: the same container,
    its user, environment and working folder, without starting a Compose
    process (half a second each with Compose v1).
    """
    containers = _containers(client, service)
    if not containers:
        raise LabError(f"the {service} is not running")
    api = client.api
    exec_id = api.exec_create(containers[0].id, argv, stdout=True, stderr=True, stdin=False, tty=False)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a chunk may end mid-character
    pieces = []
    for chunk in api.exec_start(exec_id, stream=True):
        text = decoder.decode(chunk)
        print(text, end="", flush=True)
        pieces.append(text)
    pieces.append(decoder.decode(b"", final=True))
    return api.exec_inspect(exec_id)["ExitCode"], "".join(pieces)


def stop_on_sigterm() -> None:
    # Ctrl-C raises KeyboardInterrupt; make SIGTERM do the same, so that the
    # `finally` below tears the lab down either way.
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def start(spec: LabSpec, client: docker.DockerClient) -> Compose:
    """Build, then bring the lab up and wait until server and inspector are ready."""
    others = running_labs(client)
    if others:
        raise LabError(f"a lab is already running ({', '.join(sorted(others))}): stop it with `make down` first")
    images = ensure_images(client)
    spec.out.mkdir(parents=True, exist_ok=True)
    for old in ("capture.pcap", "capture.svg", "transcript.txt", "impairment.txt"):
        (spec.out / old).unlink(missing_ok=True)
    compose = Compose(lab_environment(spec, images), spec.compose_override)
    env = compose.env
    print(f"lab {spec.name}: network {env['SOCKLAB_SUBNET']}, server {env['SOCKLAB_SERVER_IP']}, "
          f"client {env['SOCKLAB_CLIENT_IP']}, inspector in the server's network namespace", flush=True)
    if env["SOCKLAB_IMPAIR"] or env["SOCKLAB_LOSS"]:
        print(f"lab {spec.name}: impaired ({spec.transport} port {spec.port}): IMPAIR={env['SOCKLAB_IMPAIR'] or '-'} "
              f"LOSS={env['SOCKLAB_LOSS'] or '-'} SEED={env['SOCKLAB_SEED']}; the inspector's log says what it did", flush=True)
    compose.run("up", "-d", "--no-build")
    _wait_for_log(client, "server", "listening on")
    _wait_for_log(client, "inspector", "capturing on")
    return compose


def stop(compose: Compose | None = None) -> None:
    compose = compose or Compose()
    compose.run("down", "--volumes", "--remove-orphans", "--timeout", "5", check=False, capture=True)


def run_lab(name: str) -> int:
    spec = load_lab(name)
    client = docker.from_env()
    stop_on_sigterm()
    transcript: list[str] = [f"socklab lab {spec.name}: {spec.title}"]
    failures: list[str] = []
    compose = None
    try:
        compose = start(spec, client)
        for step in spec.steps:
            header = f"== client: {step.title}\n$ {shlex.join(step.run)}"
            print(header, flush=True)
            status, output = _run_in(client, "client", step.run)
            if output and not output.endswith("\n"):
                print(flush=True)  # the step's last line had no end: keep the next header on its own line
            transcript += [header, output.rstrip()]
            if status != 0:
                failures.append(f"step '{step.title}' exited {status}")
                break
        for inspector in _containers(client, "inspector"):
            inspector.stop(timeout=20)  # it writes the timeline and the SVG as it stops
        server_log = _service_logs(client, "server")
        sections = [("server log", without_trace(server_log))]
        if tracing():
            sections.append(("server system calls", annotate(server_log)))
        sections.append(("inspector: what crossed the network", _service_logs(client, "inspector")))
        for title, text in sections:
            section = f"== {title}\n{text.rstrip()}"
            print(section, flush=True)
            transcript.append(section)
        capture = spec.out / "capture.pcap"
        if not capture.is_file() or capture.stat().st_size <= 24:
            failures.append(f"no packets in {capture}")
    except KeyboardInterrupt:
        failures.append("interrupted")
    except (LabError, ComposeError, ImageError, docker.errors.DockerException) as exc:
        failures.append(str(exc))
    finally:
        print(f"lab {spec.name}: tearing down", flush=True)
        stop(compose)
    verdict = f"lab {spec.name}: " + ("OK" if not failures else "FAILED: " + "; ".join(failures))
    transcript.append(verdict)
    if spec.out.is_dir():
        (spec.out / "transcript.txt").write_text("\n".join(transcript) + "\n")
        print(f"lab {spec.name}: wrote transcript.txt, capture.pcap and capture.svg in {spec.out}")
    print(verdict, file=sys.stderr if failures else sys.stdout, flush=True)
    return 1 if failures else 0


def up(name: str) -> int:
    spec = load_lab(name)
    client = docker.from_env()
    try:
        start(spec, client)
    except (LabError, ComposeError, ImageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        stop()
        return 1
    print(f"lab {spec.name} is up. Open a shell with `make shell-client` (or shell-server, shell-inspector);\n"
          f"for example: python3 -m socklab client {spec.name} --help. Stop it with `make down`.")
    return 0
