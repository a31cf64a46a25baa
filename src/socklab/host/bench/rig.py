"""The pair of containers every network row is measured on.

    network  socklab-bench-<id>, labelled org.socklab.lab=bench, its own bridge
    server   every server at once, each on its own port (table below)
    client   idle; the bench runs the clients and the probes in it

Both run the inspector image (socklab plus iperf3, ping and socat); files live on
tmpfs, so no disk is measured. Both get a raised RLIMIT_NOFILE, for the
5,000-client row, and the client NET_RAW, for ping. Everything is removed on
exit, whatever happened.
"""

from __future__ import annotations

import json
import shlex
import time
import uuid

import docker
import docker.types

from socklab import LABEL
from socklab.host.bench import probes

FTP, NAIVE, IPERF = 2121, 2122, 5201
ECHO_BLOCKING, ECHO_THREADED, ECHO_SELECTORS = 7007, 7008, 7009  # --mode blocking threaded selectors
ECHO_SOCAT = 7010  # socat's echo (PIPE), in C: the floor of a user-space echo
ECHO_BUSY, BUSY_POLL_MS = 7011, 20  # threaded, spinning up to 20 ms for each next line: past the pacing
HTTP_OURS, HTTP_STDLIB = 8080, 8081
FTP_FILE = "big.bin"
FTP_SIZE = "256MiB"
WWW = "/srv/www"
#: Descriptors per container: 5,000 client sockets (or their 5,000 server
#: ends) and room to spare, under the Docker daemon's own hard limit.
NOFILE = 16384

SERVERS = " & ".join([
    f"mkdir -p {WWW}",
    f"python3 -m socklab server ftp --root /srv/files --generate {FTP_FILE}={FTP_SIZE}",
    f"python3 -m socklab server ftp-naive --root /srv/files --port {NAIVE}",
    "iperf3 --server --forceflush",
    f"python3 -m socklab server echo --mode blocking threaded selectors --port {ECHO_BLOCKING}",
    f"socat -d -d TCP4-LISTEN:{ECHO_SOCAT},fork,reuseaddr PIPE",
    f"python3 -m socklab server echo --mode threaded --port {ECHO_BUSY} --busy-poll {BUSY_POLL_MS}",
    f"python3 -m socklab server http --root {WWW} --demo-site --port {HTTP_OURS}",
    f"python3 -c {shlex.quote(probes.source('stdlib_http'))} {WWW} {HTTP_STDLIB}",
    "wait",
])
READY = ["ftp server for", "naive ftp listening", "Server listening", "echo server (selectors", f"0.0.0.0:{ECHO_SOCAT}", "busy polling",
         f"http server for {WWW} listening", "stdlib http server for"]


class Rig:
    """``with Rig(client, image) as rig:`` -- ``rig.run(...)`` in the client container."""

    def __init__(self, client: docker.DockerClient, image: str) -> None:
        self.docker, self.image = client, image
        self.name = f"socklab-bench-{uuid.uuid4().hex[:8]}"
        self.server_host = f"{self.name}-server"
        self._started: list = []
        self._network = None

    def __enter__(self) -> Rig:
        labels = {LABEL: "bench"}
        self._network = self.docker.networks.create(self.name, labels=labels)
        try:
            common = dict(network=self.name, labels=labels, detach=True, mem_limit="1500m", init=True,
                          ulimits=[docker.types.Ulimit(name="nofile", soft=NOFILE, hard=NOFILE)])
            self.server = self.docker.containers.run(
                self.image, ["sh", "-c", SERVERS], name=self.server_host, hostname="server",
                tmpfs={"/srv/files": "size=600m", WWW: "size=16m"}, **common)
            self._started.append(self.server)
            self.client = self.docker.containers.run(
                self.image, ["sleep", "infinity"], name=f"{self.name}-client", cap_add=["NET_RAW"],
                tmpfs={"/data": "size=600m"}, **common)
            self._started.append(self.client)
            self._wait_ready()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        for container in self._started:
            container.remove(force=True)
        if self._network is not None:
            self._network.remove()

    def _wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            logs = self.server.logs().decode(errors="replace")
            if all(marker in logs for marker in READY):
                return
            time.sleep(0.3)
        raise RuntimeError(f"bench servers not ready in {timeout:.0f} s:\n{self.server.logs().decode(errors='replace')[-3000:]}")

    def run(self, argv: list[str]) -> str:
        """Run ``argv`` in the client container; its output, or RuntimeError if it failed."""
        result = self.client.exec_run(argv)
        output = result.output.decode(errors="replace")
        if result.exit_code != 0:
            shown = " ".join(argv)[:200]
            raise RuntimeError(f"`{shown}` failed (exit {result.exit_code}):\n{output[-3000:]}")
        return output

    def sh(self, command: str) -> str:
        return self.run(["sh", "-c", command])

    def probe(self, name: str, *args: object) -> dict:
        """Run probe ``name`` in the client container; the JSON of its last line."""
        output = self.run(["python3", "-c", probes.source(name), *map(str, args)])
        return json.loads(output.strip().splitlines()[-1])
