"""``make check-<lab> SOLUTION=folder``: a solution through the lab's checks, in containers.

For each check (``socklab.checks.<lab>.CHECKS``), on a network of the run's
own (internal: nothing leaves it), with fresh containers::

    server check:  tester --> inspector's proxy (impairment) --> server.py of the solution
    client check:  client.py of the solution --> proxy --> the reference server (or a PEER)

The inspector captures what the solution's container sent and received; for
a failed check, the end of that capture's timeline is shown under the reason,
and the pcap is kept. Results go to labs/<lab>/out/check.json and check.xml
(JUnit, for a teacher's CI); the exit status is 1 when a check failed.

The solution's code is untrusted: its containers run as nobody, with every
capability dropped, no-new-privileges, a read-only root, its folder mounted
read-only, memory, CPU and pids limits, nothing published, and a time limit
per check, after which the container is killed. Everything the run made
carries the label ``org.socklab.check=<run id>`` and is removed at the end,
on failure, Ctrl-C or SIGTERM too.
"""

from __future__ import annotations

import base64
import concurrent.futures
import io
import json
import os
import shlex
import sys
import tarfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from xml.etree import ElementTree as ET

import docker
import docker.errors

from socklab import LABEL
from socklab.checks import LABS, lab_checks
from socklab.checks.model import (
    Check,
    ClientCheck,
    ClientOutcome,
    Contract,
    ServerCheck,
    Verdict,
)
from socklab.host.images import Images, ensure_images
from socklab.host.lab import stop_on_sigterm
from socklab.host.paths import LABS_DIR, REPO_ROOT

RUN_LABEL = "org.socklab.check"
SOLUTION_DIR = "/solution"
WORK_DIR = "/work"
READY_TIMEOUT = 10.0  # for a server to listen, and for the proxy
#: Checks run at once. Each has its own server (alias server-N) and proxy port
#: (PROXY_PORTS + N), so they cannot meet; most of a check is waiting (a
#: container starting, a timeout running out), which several can do together.
WORKERS = int(os.environ.get("SOCKLAB_CHECK_WORKERS", "3"))
PROXY_PORTS = 20000
#: Beyond a check's own time limit, before its container is killed from outside.
KILL_GRACE = 10.0
TIMELINE_LINES = 14  # of a failed check's capture, shown under its reason
LOG_LINES = 8  # of the solution's stderr, shown under a failure

#: The limits of a container running a solution's code.
UNTRUSTED = {
    "user": "65534:65534",  # nobody
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges"],
    "read_only": True,
    # owned by nobody (a mode would not do: Docker resets the working dir's to 755)
    "tmpfs": {"/tmp": "size=16m,mode=1777", WORK_DIR: "size=64m,uid=65534,gid=65534"},
    "working_dir": WORK_DIR,
    "mem_limit": "256m",
    "memswap_limit": "256m",
    "pids_limit": 64,
    "nano_cpus": 1_000_000_000,  # one CPU
}


class CheckError(RuntimeError):
    """The run could not be made (bad SOLUTION, no Docker...): not a finding about the solution."""


@dataclass
class Result:
    name: str
    side: str
    pitfall: str
    passed: bool
    why: str = ""
    seconds: float = 0.0
    timeline: str = ""  # the end of the capture, for a failure
    log: str = ""  # the end of the solution's own output, for a failure


@dataclass
class Report:
    lab: str
    solution: str
    results: list[Result] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if not r.passed]

    @property
    def passed(self) -> bool:
        return bool(self.results) and not self.failed

    def table(self) -> str:
        width = max((len(r.name) for r in self.results), default=10)
        lines = [f"{'check':<{width}}  result  why"]
        for r in self.results:
            lines.append(f"{r.name:<{width}}  {'pass' if r.passed else 'FAIL':<6}  {r.why if not r.passed else ''}".rstrip())
            for title, text in (("its output", r.log), ("the capture, where it went wrong", r.timeline)):
                if not r.passed and text:
                    lines.append(f"{'':<{width}}          {title}:")
                    lines.extend(f"{'':<{width}}            {line}" for line in text.splitlines())
        passed = len(self.results) - len(self.failed)
        lines.append(f"{passed}/{len(self.results)} checks passed ({self.lab}, SOLUTION={self.solution}, "
                     f"{self.seconds:.0f} s)")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"lab": self.lab, "solution": self.solution, "passed": len(self.results) - len(self.failed),
                "total": len(self.results), "seconds": round(self.seconds, 1),
                "checks": [asdict(r) for r in self.results]}

    def junit(self) -> str:
        suite = ET.Element("testsuite", name=f"socklab.check.{self.lab}", tests=str(len(self.results)),
                           failures=str(len(self.failed)), errors="0", time=f"{self.seconds:.1f}")
        ET.SubElement(ET.SubElement(suite, "properties"), "property", name="solution", value=self.solution)
        for r in self.results:
            case = ET.SubElement(suite, "testcase", classname=f"{self.lab}.{r.side}", name=r.name,
                                 time=f"{r.seconds:.2f}")
            if not r.passed:
                failure = ET.SubElement(case, "failure", message=r.why, type=r.pitfall)
                failure.text = "\n\n".join(t for t in (r.log, r.timeline) if t)
        ET.indent(suite)
        return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"

    def write(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "check.json").write_text(json.dumps(self.to_json(), indent=2) + "\n")
        (out / "check.xml").write_text(self.junit())


def resolve_solution(lab: str, solution: str) -> Path | None:
    """The solution's folder (None: the reference), or a CheckError saying what is wrong with it."""
    if solution == "reference":
        return None
    path = Path(solution or LABS_DIR / lab / "starter")
    if not path.is_absolute():
        path = (Path.cwd() / path).resolve()
    if not path.is_dir():
        raise CheckError(f"SOLUTION={solution}: no such folder (give a folder holding server.py and client.py, "
                         f"or 'reference')")
    missing = [name for name in ("server.py", "client.py") if not (path / name).is_file()]
    if missing:
        raise CheckError(f"SOLUTION={solution}: {' and '.join(missing)} missing (start from labs/{lab}/starter)")
    return path


def _fill(argv: list[str], **values: object) -> list[str]:
    return [arg.format(**values) for arg in argv]


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class Sandbox:
    """One run's network and containers; close() removes all of them."""

    def __init__(self, client: docker.DockerClient, lab: str, run_id: str) -> None:
        self.client, self.lab, self.run_id = client, lab, run_id
        self.labels = {LABEL: lab, RUN_LABEL: run_id}
        # internal: no route out of it, so a flooding solution floods only its own run
        self.network = client.networks.create(f"socklab-check-{run_id}", driver="bridge", internal=True,
                                              labels=self.labels)

    def start(self, name: str, image: str, command: list[str], alias: str = "", solution: Path | None = None,
              untrusted: bool = False, **options) -> docker.models.containers.Container:
        settings = dict(UNTRUSTED) if untrusted else {
            "cap_drop": ["ALL"], "security_opt": ["no-new-privileges"], "mem_limit": "512m", "pids_limit": 256}
        settings.update(options)
        if solution is not None:
            settings["volumes"] = {str(solution): {"bind": SOLUTION_DIR, "mode": "ro"}}
        container = self.client.containers.create(
            image, command, name=f"socklab-check-{self.run_id}-{name}", labels=self.labels, detach=True,
            network=self.network.name, init=True, **settings)
        if alias:
            # Connected again with the alias: the SDK's create() cannot set one.
            self.network.disconnect(container)
            self.network.connect(container, aliases=[alias])
        container.start()
        return container

    def close(self) -> None:
        remove_run(self.client, self.run_id)


def remove_run(client: docker.DockerClient, run_id: str) -> None:
    """Remove a run's containers and network, by its label: from the run itself when it ends, or
    from make grade after a run it killed at its time limit (which could not clean up)."""
    for container in client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"}):
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass  # already going: a container removed as its check ended
    for network in client.networks.list(filters={"label": f"{RUN_LABEL}={run_id}"}):
        try:
            network.remove()
        except docker.errors.NotFound:
            pass


def _exec(container, command: str, user: str = "root", **options) -> tuple[int, str]:
    result = container.exec_run(["sh", "-c", command], user=user, **options)
    return result.exit_code, result.output.decode(errors="replace")


def _exec_with_deadline(container, argv: list[str], seconds: float, **options) -> tuple[int | None, bytes, bytes]:
    """Run ``argv`` in ``container``; at the deadline the container is killed: (None, out, err)."""
    done: dict = {}

    def run() -> None:
        try:
            result = container.exec_run(argv, demux=True, **options)
            out, err = result.output
            done.update(status=result.exit_code, out=out or b"", err=err or b"")
        except docker.errors.APIError as exc:
            done.update(status=None, out=b"", err=str(exc).encode())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        try:
            container.kill()
        except docker.errors.APIError:
            pass
        thread.join(5)
        return None, done.get("out", b""), done.get("err", b"")
    return done.get("status"), done.get("out", b""), done.get("err", b"")


class Checker:
    """Runs one solution (or the reference) through one lab's checks."""

    def __init__(self, lab: str, solution: Path | None, out: Path, client: docker.DockerClient | None = None,
                 images: Images | None = None, time_limit: float | None = None, run_id: str = "",
                 progress=print) -> None:
        if lab not in LABS:
            raise CheckError(f"no checks for lab {lab!r} (labs: {', '.join(LABS)})")
        self.lab, self.solution, self.out = lab, solution, out
        self.module = lab_checks(lab)
        self.contract: Contract = self.module.CONTRACT
        self.port: int = self.module.PORT
        self.transport: str = getattr(self.module, "TRANSPORT", "tcp")
        self.client = client or docker.from_env()
        self.images = images or ensure_images(self.client)
        self.deadline = time.monotonic() + time_limit if time_limit else None
        self.run_id = run_id or uuid.uuid4().hex[:10]
        self.progress = progress

    @property
    def name(self) -> str:
        if self.solution is None:
            return "reference"
        try:
            return str(self.solution.relative_to(REPO_ROOT))
        except ValueError:
            return str(self.solution)

    def run(self, only: list[str] | None = None) -> Report:
        checks = [c for c in self.module.CHECKS if not only or c.name in only]
        report = Report(self.lab, self.name)
        started = time.monotonic()
        self.out.mkdir(parents=True, exist_ok=True)
        for old in self.out.glob("check-*.pcap"):
            old.unlink()
        box = Sandbox(self.client, self.lab, self.run_id)
        pool = concurrent.futures.ThreadPoolExecutor(max(1, WORKERS))
        try:
            # NET_RAW and NET_ADMIN to capture; SETGID because tcpdump -Z root
            # still calls setgroups() after opening the interface.
            self.inspector = box.start("inspector", self.images.inspector, ["sleep", "infinity"], alias="proxy",
                                       cap_add=["NET_RAW", "NET_ADMIN", "SETGID"])
            self.tester = box.start("tester", self.images.lab, ["sleep", "infinity"])
            futures = [pool.submit(self._run_in_time, box, number, check) for number, check in enumerate(checks, 1)]
            for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
                result = future.result()
                self.progress(f"  [{done}/{len(checks)}] {result.name:<28} {'pass' if result.passed else 'FAIL'}"
                              f"  ({result.seconds:.1f} s)")
            report.results = [future.result() for future in futures]  # in the lab's order
        finally:
            # On Ctrl-C too: no new check starts, and removing the containers
            # ends the ones running (their calls fail at once) without waiting.
            pool.shutdown(wait=False, cancel_futures=True)
            box.close()
        report.seconds = time.monotonic() - started
        report.write(self.out)
        return report

    # --- one check -------------------------------------------------------------------

    def _run_in_time(self, box: Sandbox, number: int, check: Check) -> Result:
        if self.deadline and time.monotonic() > self.deadline:
            return Result(check.name, check.side, check.pitfall, False, "not run: the solution's time limit was reached")
        return self._run_one(box, number, check)

    def _run_one(self, box: Sandbox, number: int, check: Check) -> Result:
        started = time.monotonic()
        result = Result(check.name, check.side, check.pitfall, False)
        server = sut = None
        try:
            server = self._start_server(box, number, check)
            sut = server if check.side == "server" else box.start(
                f"client-{number}", self.images.lab, ["sleep", "infinity"], solution=self.solution, untrusted=True)
            problem = self._wait_listening(server, check)
            if problem:
                result.why = problem
                result.log = _tail(server.logs().decode(errors="replace"), LOG_LINES)
                return result
            sut.reload()
            address = sut.attrs["NetworkSettings"]["Networks"][box.network.name]["IPAddress"]
            self._start_capture(number, address)
            self._start_proxy(number, check)
            if isinstance(check, ServerCheck):
                verdict = self._drive(number, check)
                said = server.logs().decode(errors="replace")
                server.reload()
                if verdict.passed and server.status in ("exited", "dead"):
                    # Its address went back to Docker's pool, and maybe to another check's server,
                    # which then answered in its place (UDP: no connection to be refused).
                    verdict = Verdict.fail(f"your server exited (status {server.attrs['State']['ExitCode']}) "
                                           f"during the check, which looks for this: {check.pitfall}")
            else:
                verdict, said = self._run_client(number, sut, check)
            result.passed, result.why = verdict.passed, verdict.why
            if not verdict.passed:
                result.log = _tail(said, LOG_LINES)
        except docker.errors.APIError as exc:
            result.why = f"the check could not run: {exc.explanation or exc}"
        finally:
            pcap = self._stop_capture(number)
            if not result.passed and pcap:
                path = self.out / f"check-{check.name}.pcap"
                path.write_bytes(pcap)
                result.timeline = self._timeline(path)
            for container in (sut, server):
                if container is not None:
                    try:
                        container.remove(force=True)
                    except docker.errors.APIError:
                        pass
            result.seconds = time.monotonic() - started
        return result

    def _start_server(self, box: Sandbox, number: int, check: Check):
        values = {"port": self.port, "host": "0.0.0.0", "dir": SOLUTION_DIR, "root": f"{WORK_DIR}/files"}
        if check.side == "server" and self.solution is not None:
            argv, solution, untrusted = _fill(self.contract.server, **values), self.solution, True
        elif check.side == "server" or not check.peer:
            argv, solution, untrusted = _fill(self.contract.reference_server, **values), None, False
        else:
            argv, solution, untrusted = (["python3", "-m", "socklab.checks", "peer", self.lab, check.peer,
                                          "--port", str(self.port)], None, False)
        setup = self.contract.server_setup.format(**values)
        command = ["sh", "-c", f"{setup}\nexec {shlex.join(argv)}" if setup else f"exec {shlex.join(argv)}"]
        options = {} if untrusted else {"tmpfs": {WORK_DIR: "size=256m"}, "working_dir": WORK_DIR,
                                        "cap_add": list(self.contract.reference_caps)}
        return box.start(f"server-{number}", self.images.lab, command, alias=f"server-{number}", solution=solution,
                         untrusted=untrusted, **options)

    def _wait_listening(self, server, check: Check) -> str:
        """"" once the server listens; else why not (it exited, or never listened)."""
        flag = "-Hltn" if self.transport == "tcp" else "-Hlun"
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            server.reload()
            if server.status in ("exited", "dead"):
                status = server.attrs["State"]["ExitCode"]
                who = "your server" if check.side == "server" and self.solution else "the reference server"
                return f"{who} exited (status {status}) before listening on port {self.port}"
            try:
                code, output = _exec(server, f"ss {flag} 'sport = :{self.port}'")
            except docker.errors.APIError:  # it stopped between reload() and exec: said next round
                code, output = 1, ""
            if code == 0 and output.strip():
                return ""
            time.sleep(0.2)
        return (f"nothing listening on {self.transport.upper()} port {self.port} after {READY_TIMEOUT:g} s: "
                "does the server bind() and listen() on the port it is given?")

    def _start_capture(self, number: int, address: str) -> None:
        # The container under test talks to the proxy only: its address says it all,
        # and keeps the IP fragments after a large datagram's first (they name no port).
        what = f"host {address}"
        # -Z root: tcpdump would otherwise switch to its own user, who may not write the file
        self.inspector.exec_run(["tcpdump", "-U", "--immediate-mode", "-n", "-Z", "root", "-i", "eth0",
                                 "-w", f"/tmp/check-{number}.pcap", what], detach=True)
        self._wait_for(self.inspector, "pgrep -x tcpdump", "the capture did not start")

    def _start_proxy(self, number: int, check: Check) -> None:
        spec = check.impair or "none"
        port = PROXY_PORTS + number
        self.inspector.exec_run(["python3", "-m", "socklab", "inspector", "proxy", f"--{self.transport}",
                                 "--listen", f"0.0.0.0:{port}", "--to", f"server-{number}:{self.port}",
                                 "--exercise", self.lab, "--impair", spec, "--seed", "1"], detach=True)
        flag = "-Hltn" if self.transport == "tcp" else "-Hlun"
        self._wait_for(self.inspector, f"ss {flag} 'sport = :{port}' | grep -q .", "the proxy did not start")

    def _wait_for(self, container, command: str, failure: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if _exec(container, command)[0] == 0:
                return
            time.sleep(0.1)
        raise docker.errors.APIError(failure)

    def _stop_capture(self, number: int) -> bytes:
        """Stop the proxy and the capture; the capture's bytes (b"" if there are none)."""
        inspector = getattr(self, "inspector", None)
        if inspector is None:
            return b""
        try:
            proxy = f"inspector proxy .*--listen 0.0.0.0:{PROXY_PORTS + number} "
            capture = f"tcpdump .*/tmp/check-{number}.pcap "
            _exec(inspector, f"pkill -f '{proxy}'; pkill -INT -f '{capture}'; "
                             f"for i in $(seq 50); do pgrep -f '{capture}' >/dev/null || pgrep -f '{proxy}' "
                             ">/dev/null || exit 0; sleep 0.1; done")
            stream, _ = inspector.get_archive(f"/tmp/check-{number}.pcap")
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                member = tar.getmembers()[0]
                return tar.extractfile(member).read()
        except (docker.errors.APIError, tarfile.TarError, IndexError):
            return b""

    def _timeline(self, path: Path) -> str:
        from socklab.inspector.pcap import PcapError, read_pcap
        from socklab.inspector.timeline import timeline_text

        try:
            packets = read_pcap(path)
        except (PcapError, OSError) as exc:
            return f"(capture unreadable: {exc})"
        if not packets:
            path.unlink()
            return ""
        text = timeline_text(packets, self.lab)
        lines = text.splitlines()
        return "\n".join(lines[:1] + ["..."] * (len(lines) > TIMELINE_LINES + 1) + lines[1:][-TIMELINE_LINES:])

    def _drive(self, number: int, check: ServerCheck) -> Verdict:
        # timeout(1) ends this check's tester alone; the tester container serves the others
        argv = ["timeout", "-s", "KILL", f"{check.time_limit:g}", "python3", "-m", "socklab.checks", "drive",
                self.lab, check.name, "--target", f"proxy:{PROXY_PORTS + number}"]
        status, out, err = _exec_with_deadline(self.tester, argv, check.time_limit + KILL_GRACE)
        if status in (None, 137):
            return Verdict.fail(f"the check did not end within {check.time_limit:g} s")
        lines = out.decode(errors="replace").strip().splitlines()
        try:
            verdict = json.loads(lines[-1])
            return Verdict(bool(verdict["passed"]), str(verdict["why"]))
        except (IndexError, ValueError, KeyError):
            return Verdict.fail(f"the tester failed: {_tail(err.decode(errors='replace'), 3)}")

    def _run_client(self, number: int, sut, check: ClientCheck) -> tuple[Verdict, str]:
        """The verdict, and what the client said on stderr."""
        values = {"port": PROXY_PORTS + number, "host": "proxy", "dir": SOLUTION_DIR}
        template = self.contract.client if self.solution is not None else self.contract.reference_client
        argv = _fill(template, **values) + _fill(check.args, **values)
        user = UNTRUSTED["user"]  # the reference client too: the same sandbox for both
        if check.setup:
            _exec(sut, check.setup, user=user, workdir=WORK_DIR)
        script = f'printf %s "$CHECK_STDIN" | base64 -d | exec {shlex.join(argv)}'
        status, out, err = _exec_with_deadline(
            sut, ["sh", "-c", script], check.time_limit, user=user, workdir=WORK_DIR,
            environment={"CHECK_STDIN": base64.b64encode(check.stdin).decode()})
        after = ""
        if check.inspect and status is not None:
            # CLIENT_STATUS: an inspect may do more (fetch uploads back) only after a success;
            # CHECK_SERVER: the server's name, to reach it directly, not through the proxy
            after = _exec(sut, check.inspect, user=user, workdir=WORK_DIR,
                          environment={"CLIENT_STATUS": str(status), "CHECK_SERVER": f"server-{number}"})[1]
        return check.judge(ClientOutcome(status, out, err, after)), err.decode(errors="replace")


def check(lab: str, solution: str, out: Path | None = None, time_limit: float | None = None,
          only: list[str] | None = None, run_id: str = "") -> int:
    """``make check-<lab>``: 0 when every check passed, 1 when one failed."""
    if lab not in LABS:
        raise CheckError(f"no checks for lab {lab!r} (labs: {', '.join(LABS)})")
    path = resolve_solution(lab, solution)
    out = out or LABS_DIR / lab / "out"
    checker = Checker(lab, path, out, time_limit=time_limit, run_id=run_id)
    print(f"check-{lab}: SOLUTION={checker.name}: {len(checker.module.CHECKS)} checks, each in fresh containers "
          f"on network socklab-check-{checker.run_id}", flush=True)
    stop_on_sigterm()
    try:
        report = checker.run(only)
    except KeyboardInterrupt:
        print(f"check-{lab}: interrupted; its containers and network were removed", file=sys.stderr)
        return 130
    print()
    print(report.table())
    print(f"results: {out / 'check.json'}, {out / 'check.xml'}" + (
        f"; captures of the failed checks: {out}/check-*.pcap" if report.failed else ""))
    sys.stdout.flush()
    return 0 if report.passed else 1
