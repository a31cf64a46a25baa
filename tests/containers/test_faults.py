"""Faults, with nothing lost; and what each container may do.

Every test starts its own network and containers (labelled, removed even on
failure), with the limits docker-compose.yml gives the lab's roles, so that
what passes here holds in the lab:

- clients SIGKILLed at seeded random points of 100 transfers, paced by the
  proxy so that the kills land mid-body: no file under its real name is ever
  partial, and the server serves the next client;
- the server container stopped or killed mid-transfer: the client says so and
  exits non-zero, keeping nothing partial;
- 1,000 idle connections against each TCP server in its default mode: others
  are still served, and the idle timeout closes the idle ones;
- a full disk during put: a clear error, nothing half-written, still serving;
- the running lab's containers: capabilities, read-only root, limits, no
  published port; shell commands run as nobody.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import time

import pytest
from support import ServerLog, sh

from socklab import LABEL
from socklab.samples import sample_digest

pytestmark = pytest.mark.container

# As docker-compose.yml gives the lab's server and client (checked against the
# running lab by test_the_lab_containers_run_with_least_privilege).
SERVER_PIDS = 1200
ROLE_PIDS = 256
MEMORY = 512 << 20
SHELL_CAPS = ["SETUID", "SETGID", "KILL"]  # labs/shell/compose.yml
INSPECTOR_CAPS = ["NET_RAW", "NET_ADMIN", "SETGID", "DAC_OVERRIDE", "CHOWN"]
FTP = "python3 -m socklab client ftp --host server --dir /data"
BIG = 4 << 20  # a few MiB: long enough to be killed in the middle, short enough for 100 runs
# The transfers are paced by socklab's proxy in the client container, not by
# a slow CPU: the ftp server sends a file it knows with sendfile() in a few
# milliseconds, and the kill or the stop must land mid-body whatever the
# machine's speed. Paced, 4 MiB take about a second either way.
PACED = "python3 -m socklab client ftp --host 127.0.0.1 --port 3121 --dir /data"
PACE = "rate=32mbit"
# Small socket buffers (per container: the network namespace's own), so that
# neither end can run megabytes ahead of the paced link: a kill mid-body is
# then seen mid-body by the server too, as on a real slow link.
SMALL_BUFFERS = {"net.ipv4.tcp_rmem": "4096 16384 65536", "net.ipv4.tcp_wmem": "4096 16384 65536"}


def paced(client, rate: str = PACE) -> str:
    """Start the pacing proxy (127.0.0.1:3121 -> server:2121) in ``client``; the ftp command to use."""
    sh(client, "python3 -m socklab inspector proxy --tcp --listen 127.0.0.1:3121 --to server:2121 "
               f"--impair {rate} --seed 1 > /tmp/proxy.log 2>&1 &")
    poll("the pacing proxy", lambda: sh(client, "ss -Hltn 'sport = :3121' | grep -q .")[0] == 0)
    return PACED


@contextlib.contextmanager
def lab_network(images, name: str):
    """A fresh labelled network; containers on it come from ``start``."""
    from testcontainers.core.network import Network

    with Network(docker_network_kw={"labels": {LABEL: f"test-faults-{name}"}}) as network:
        yield network


def container(image, network, command: str, *, alias: str | None = None, server: bool = False,
              tmpfs: dict[str, str] | None = None, **kwargs):
    """A container with the lab's limits for its role (not started)."""
    from testcontainers.core.container import DockerContainer

    c = DockerContainer(image).with_network(network).with_command(command)
    if alias:
        c = c.with_network_aliases(alias)
    for path, options in {"/tmp": "size=64m", **(tmpfs or {})}.items():
        c = c.with_tmpfs_mount(path, options)
    limits = {"labels": {LABEL: "test-faults"}, "mem_limit": MEMORY, "pids_limit": SERVER_PIDS if server else ROLE_PIDS,
              "cap_drop": ["ALL"], "security_opt": ["no-new-privileges:true"], "read_only": True, "init": True}
    return c.with_kwargs(**{**limits, **kwargs})


def started(c, ready: str | None = "listening on"):
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    if ready:
        c = c.waiting_for(LogMessageWaitStrategy(ready).with_startup_timeout(30))
    return c


def ftp_server(image, network, *args: str, tmpfs: str | None = "size=256m", **kwargs):
    """The ftp server serving /srv/files: a tmpfs of that size, or (None) what ``volumes`` mounts there."""
    return started(container(image, network, f"python3 -m socklab server ftp --root /srv/files {' '.join(args)}",
                             alias="server", server=True, tmpfs={"/srv/files": tmpfs} if tmpfs else {}, **kwargs))


def client_container(image, network, **kwargs):
    return container(image, network, "sleep infinity", tmpfs={"/data": "size=256m"}, **kwargs)


def files(c, folder: str) -> list[str]:
    code, out = sh(c, f"ls -A {folder}")
    assert code == 0, out
    return out.split()


def poll(what: str, check, timeout: float = 10):
    """check()'s first truthy result, tried every 0.1 s for up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout:g} s")
        time.sleep(0.1)
    return result


# -- clients killed at random points of 100 transfers --------------------------

# Runs in the client container: one process for the 100 transfers (not 100
# docker execs). Each client is SIGKILLed after a seeded random delay between
# 0 and 1.25 times a whole transfer, so it dies anywhere: starting, connecting,
# mid-body, verifying, or not at all. After each, a quick `ls` must be served.
KILLER = r"""
import json, random, subprocess, sys, time
seed, runs = int(sys.argv[1]), int(sys.argv[2])
ftp = sys.argv[3].split()
def run(*words, timeout=30):
    return subprocess.run([*ftp, *words], capture_output=True, text=True, timeout=timeout)
took = {}
for verb, words in (("get", ["get", "big.bin", "src.bin"]), ("put", ["put", "src.bin", "cal.bin"])):
    started = time.monotonic()
    done = run(*words)
    assert done.returncode == 0, done.stderr
    took[verb] = time.monotonic() - started
rng = random.Random(seed)
outcomes = {"killed": 0, "finished": 0}
unserved = []
for i in range(runs):
    verb = "get" if i % 2 == 0 else "put"
    words = ["get", "big.bin", f"got-{i}.bin"] if verb == "get" else ["put", "src.bin", f"up-{i}.bin"]
    delay = rng.uniform(0, 1.25 * took[verb])
    client = subprocess.Popen([*ftp, *words], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client.wait(timeout=delay)
        outcomes["finished"] += 1
    except subprocess.TimeoutExpired:
        client.kill()  # SIGKILL: no finally, no cleanup on the client's side
        client.wait()
        outcomes["killed"] += 1
    ls = run("ls", timeout=10)
    if ls.returncode != 0:
        unserved.append((i, ls.stderr))
print(json.dumps({"took": took, **outcomes, "unserved": unserved}))
"""


def test_clients_killed_at_random_points_leave_nothing_partial(images):
    seed, runs = 6, 100
    with lab_network(images, "kill") as network, \
            ftp_server(images.lab, network, f"--generate big.bin={BIG}", sysctls=SMALL_BUFFERS) as server, \
            client_container(images.lab, network, sysctls=SMALL_BUFFERS) as client:
        log = ServerLog(server)
        ftp = paced(client)
        code, out = sh(client, f"timeout 400 python3 -c {shlex.quote(KILLER)} {seed} {runs} {shlex.quote(ftp)}")
        assert code == 0, out
        report = json.loads(out.splitlines()[-1])
        assert report["unserved"] == [], report
        assert report["killed"] >= runs // 2, report  # the delays are seeded: most runs die midway
        expected = sample_digest("big.bin", BIG)

        # On the client (get): each got-N.bin is whole; a killed client's
        # temporary file may stay, but only under its hidden temporary name.
        names = files(client, "/data")
        got = [n for n in names if re.fullmatch(r"got-\d+\.bin", n)]
        assert set(names) - set(got) - {"src.bin"} <= {n for n in names if re.fullmatch(r"\.got-\d+\.bin\.part-\w+", n)}
        code, out = sh(client, "cd /data && sha256sum got-*.bin")
        assert code == 0 and got and all(line.split()[0] == expected for line in out.splitlines()), out

        # On the server (put): each up-N.bin is whole, and every temporary
        # file is gone once the server has seen its client go.
        def no_temporary_files() -> list[str] | None:
            names = files(server, "/srv/files")
            return None if any(n.startswith(".upload-") for n in names) else names

        uploaded = poll("the server to remove the killed uploads' temporary files", no_temporary_files)
        assert set(uploaded) - {"big.bin", "cal.bin"} == {n for n in uploaded if re.fullmatch(r"up-\d+\.bin", n)}
        code, out = sh(server, "cd /srv/files && sha256sum up-*.bin")
        assert code == 0 and all(line.split()[0] == expected for line in out.splitlines()), out

        # Killed midway, both ways, and told apart by the server.
        text = log.since_start()
        assert "of a file body still to come; nothing was kept" in text, text[-3000:]  # a put cut mid-body
        assert re.search(r"get big\.bin: cut short", text), text[-3000:]  # a get cut mid-body
        log.assert_healthy()
        print(f"\n{runs} transfers, seed {seed}: {report['killed']} killed, {report['finished']} finished; "
              f"{len(got)} gets and {len(uploaded) - 2} puts complete")


# -- the server stopped mid-transfer -----------------------------------------


@pytest.mark.parametrize("how", ["stop", "kill"])
@pytest.mark.parametrize("verb", ["get", "put"])
def test_server_stopped_mid_transfer_is_a_clear_error_and_nothing_partial(images, docker_client, verb, how):
    # Paced at 8 MB/s, the transfer takes seconds: the server is surely
    # stopped in the middle of it. The served folder is a volume: what a put
    # left there is still there after the stop.
    size = 64 << 20
    volume = docker_client.volumes.create(labels={LABEL: "test-faults"})
    try:
        with lab_network(images, "stop") as network, \
                ftp_server(images.lab, network, f"--generate big.bin={size}", tmpfs=None).with_volume_mapping(
                    volume.name, "/srv/files", "rw") as server, \
                client_container(images.lab, network) as client:
            if verb == "put":
                assert sh(client, f"head -c {size} /dev/urandom > /data/big.bin")[0] == 0
            # --timeout 5: a killed container may take its FIN with it; then silence is all the client sees
            command = f"{paced(client, 'rate=64mbit')} --timeout 5 {verb} big.bin {'up.bin' if verb == 'put' else ''}"
            sh(client, f"({command}; echo $? > /tmp/rc) > /tmp/out 2>&1 &")
            # In the middle: the receiving side's temporary file has grown.
            side, pattern = (client, "/data/.big.bin.part-*") if verb == "get" else (server, "/srv/files/.upload-*")
            poll("the transfer to start", lambda: sh(side, f"test $(cat {pattern} 2>/dev/null | wc -c) -gt 1000000")[0] == 0,
                 timeout=20)
            wrapped = server.get_wrapped_container()
            wrapped.stop(timeout=5) if how == "stop" else wrapped.kill()
            rc = poll("the client to end", lambda: sh(client, "cat /tmp/rc 2>/dev/null")[1].strip(), timeout=40)
            out = sh(client, "cat /tmp/out")[1]
            assert rc == "2", out
            assert re.search(r"error: connection to 127.0.0.1:3121 failed: .*(closed|reset|Broken pipe|no answer from the server "
                             r"for 5 s)", out), out
            if verb == "get":
                assert files(client, "/data") == []  # neither big.bin nor its temporary file
            else:
                # Restarted on the same folder: no up.bin, and what the stopped
                # server's upload left under its temporary name is removed.
                wrapped.start()
                poll("the server to restart", lambda: wrapped.logs().count(b"listening on") == 2, timeout=20)
                assert re.search(rb"removed \.upload-\w+: an upload an earlier run did not finish", wrapped.logs())
                assert sorted(files(server, "/srv/files")) == ["big.bin"]
                assert sh(client, f"{FTP} ls")[0] == 0
    finally:
        volume.remove(force=True)


# -- 1,000 idle connections against each TCP server ----------------------------

# Opens N connections and sends nothing; writes "connected N" to its output,
# then counts the connections the server closes, until all are or time is up.
HOLDER = r"""
import selectors, socket, sys, time
host, port, n, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
socks = [socket.create_connection((host, port), timeout=10) for _ in range(n)]
print("connected", len(socks), flush=True)
selector = selectors.DefaultSelector()
for s in socks:
    s.setblocking(False)
    selector.register(s, selectors.EVENT_READ)
closed, deadline = 0, time.monotonic() + hold
while closed < n and time.monotonic() < deadline:
    for key, _ in selector.select(0.5):
        try:
            data = key.fileobj.recv(65536)  # the server's last words, or its end of stream
        except OSError:
            data = b""
        if not data:
            selector.unregister(key.fileobj)
            closed += 1
print("closed", closed, flush=True)
"""

SERVERS = {
    # name: (port, server options besides host/port/root, a client that must be served, what it prints)
    "echo": (7007, "", "python3 -m socklab client echo --host server hello", "HELLO"),
    "ftp": (2121, "--root /srv/files", "python3 -m socklab client ftp --host server ls", "hello.txt"),
    "shell": (2222, "", "python3 -m socklab client shell --host server -c 'id -u'", "65534"),
    "http": (8080, "--root /srv/files", "python3 -m socklab client http --host server --fail /hello.txt", "hello"),
}
IDLE = 1000


def _hold_and_probe(client, port: int, probe: str, hold: float, probes: int = 3) -> str:
    """Hold IDLE silent connections; while they are open, run ``probe`` several times."""
    sh(client, "rm -f /tmp/holder.out")
    sh(client, f"timeout {hold + 30} python3 -c {shlex.quote(HOLDER)} server {port} {IDLE} {hold} > /tmp/holder.out 2>&1 &")
    poll("the idle connections to open", lambda: "connected" in sh(client, "cat /tmp/holder.out")[1], timeout=30)
    outputs = []
    for _ in range(probes):
        code, out = sh(client, f"timeout 10 {probe} 2>&1")
        assert code == 0, f"not served beside {IDLE} idle connections: {out}"
        outputs.append(out)
        time.sleep(0.5)
    return "\n".join(outputs)


@pytest.mark.parametrize("name", SERVERS)
def test_a_thousand_idle_connections_neither_stop_others_nor_stay_forever(images, name):
    port, options, probe, answer = SERVERS[name]
    caps = {"cap_add": SHELL_CAPS} if name == "shell" else {}
    command = f"python3 -m socklab server {name} --host 0.0.0.0 --port {port} {options}".strip()
    with lab_network(images, f"idle-{name}") as network, client_container(images.lab, network) as client:
        # The default mode, as `python -m socklab server NAME` runs: others are served.
        with started(container(images.lab, network, command, alias="server", server=True,
                               tmpfs={"/srv/files": "size=16m"}, **caps)) as server:
            log = ServerLog(server)
            sh(server, "echo hello > /srv/files/hello.txt")
            out = _hold_and_probe(client, port, probe, hold=8)
            assert out.count(answer) >= 3, out
            assert "refused" not in log.since_start()
            log.assert_healthy()
            stats = server.get_wrapped_container().stats(stream=False)
        print(f"\n{name}: {IDLE} idle connections held: {stats['pids_stats'].get('current')} pids, "
              f"{stats['memory_stats'].get('usage', 0) >> 20} MiB")
        # The same with a short idle timeout: the idle peers are closed, and
        # the server serves on.
        with started(container(images.lab, network, f"{command} --timeout 3", alias="server", server=True,
                               tmpfs={"/srv/files": "size=16m"}, **caps)) as server:
            log = ServerLog(server)
            sh(server, "echo hello > /srv/files/hello.txt")
            _hold_and_probe(client, port, probe, hold=25, probes=1)
            closed = poll("the idle timeout to close the idle connections",
                          lambda: re.search(r"closed (\d+)", sh(client, "cat /tmp/holder.out")[1]), timeout=40)
            assert int(closed.group(1)) == IDLE, sh(client, "cat /tmp/holder.out")[1]
            code, out = sh(client, f"timeout 10 {probe} 2>&1")
            assert code == 0 and answer in out, out
            log.assert_healthy()


# -- a full disk during put --------------------------------------------------


def test_a_full_disk_during_put_is_a_clear_error_and_leaves_nothing(images):
    with lab_network(images, "full") as network, \
            ftp_server(images.lab, network, tmpfs="size=1m") as server, \
            client_container(images.lab, network) as client:
        log = ServerLog(server)
        assert sh(client, "head -c 4194304 /dev/urandom > /data/big.bin && echo small > /data/small.txt")[0] == 0
        code, out = sh(client, f"{FTP} put big.bin 2>&1")
        assert code == 1, out
        assert "no-space: could not store big.bin: No space left on device; nothing was kept" in out, out
        assert files(server, "/srv/files") == []  # neither big.bin nor the temporary file
        code, out = sh(client, f"{FTP} put small.txt && {FTP} ls")
        assert code == 0 and "small.txt" in out, out
        assert files(server, "/srv/files") == ["small.txt"]
        log.assert_healthy()


# -- least privilege, in the running lab -----------------------------------------


@pytest.mark.lab  # the lab's fixed subnet and Compose project: one at a time (flock /tmp/socklab-lab.lock)
@pytest.mark.parametrize("name", ["ftp", "shell"])  # the base file alone, and with a lab's own compose.yml
def test_the_lab_containers_run_with_least_privilege(docker_client, images, name):
    from socklab.host.lab import load_lab, start, stop

    compose = None
    try:
        compose = start(load_lab(name), docker_client)
        roles = {c.labels["com.docker.compose.service"]: c for c in docker_client.containers.list(
            filters={"label": ["com.docker.compose.project=socklab", f"{LABEL}={name}"]})}
        assert sorted(roles) == ["client", "inspector", "server"]
        expected_caps = {"server": SHELL_CAPS if name == "shell" else None, "client": None, "inspector": INSPECTOR_CAPS}
        for role, c in roles.items():
            host = c.attrs["HostConfig"]
            assert host["CapDrop"] == ["ALL"], role
            assert sorted(host["CapAdd"] or []) == sorted(expected_caps[role] or []), role
            assert host["ReadonlyRootfs"] is True, role
            assert "no-new-privileges:true" in host["SecurityOpt"], role
            assert 0 < host["Memory"] <= MEMORY, role
            assert host["PidsLimit"] == (SERVER_PIDS if role == "server" else ROLE_PIDS if role == "client" else 64), role
            assert not host["PortBindings"] and not host["PublishAllPorts"], role
            assert not any(c.attrs["NetworkSettings"]["Ports"].values()), role  # nothing reachable from the host
        for role in ("server", "client"):
            code, out = roles[role].exec_run(["touch", "/usr/written"])
            assert code != 0 and b"Read-only file system" in out, (role, out)
        if name == "shell":
            code, out = roles["client"].exec_run(["python3", "-m", "socklab", "client", "shell", "--host", "server",
                                                  "-c", "id -u; touch /tmp/mine && echo wrote /tmp"])
            assert code == 0 and out.decode().split()[:1] == ["65534"] and b"wrote /tmp" in out, out
    finally:
        stop(compose)
