"""Putting the impairment proxy between a lab's client and server, unseen by both.

The kernels this lab runs on may have no ``tc netem``, so impairment happens
in user space, in the server's network namespace (the inspector's):

    client --> eth0:PORT --(iptables REDIRECT)--> proxy :PORT+10000 --> 127.0.0.1:PORT server
                 ^ tcpdump captures here, before the redirect

The client still connects to ``server:PORT``; tcpdump on eth0 still sees
PORT, so the capture shows what the client really sent and received, after
the impairment. Only traffic arriving on eth0 is redirected: the proxy's own
connection to 127.0.0.1 reaches the real server.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

PROXY_PORT_OFFSET = 10000
READY_SECONDS = 15.0


def proxy_arguments(impair: str, loss: str) -> list[str]:
    """``IMPAIR`` (a scenario name, or a spec with '=') and ``LOSS`` as proxy options.

    A spec given with a scenario amends it, so LOSS adds to a named scenario.
    """
    scenario = impair if impair and "=" not in impair else ""
    spec = ",".join(part for part in (impair if "=" in impair else "", f"loss={loss}" if loss else "") if part)
    return [*(["--scenario", scenario] if scenario else []), *(["--impair", spec] if spec else [])]


def redirect_rule(action: str, transport: str, port: int) -> list[str]:
    """The iptables command that adds (-A) or deletes (-D) the redirect."""
    return ["iptables", "-t", "nat", action, "PREROUTING", "-i", "eth0", "-p", transport,
            "--dport", str(port), "-j", "REDIRECT", "--to-ports", str(port + PROXY_PORT_OFFSET)]


class ImpairedPath:
    """The proxy process and the redirect, from start() to stop()."""

    def __init__(self, port: int, transport: str, impair: str, loss: str, seed: int, record: str) -> None:
        self.port, self.transport = port, transport
        self.command = [sys.executable, "-m", "socklab", "inspector", "proxy",
                        "--listen", f"0.0.0.0:{port + PROXY_PORT_OFFSET}", "--to", f"127.0.0.1:{port}",
                        f"--{transport}", *proxy_arguments(impair, loss), "--seed", str(seed), "--record", record]
        self.log: list[str] = []
        self._process: subprocess.Popen | None = None
        self._redirected = False

    def start(self) -> None:
        self._process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ready = threading.Event()
        threading.Thread(target=self._collect, args=(ready,), daemon=True).start()
        if not ready.wait(READY_SECONDS):
            self.stop()
            raise RuntimeError("the impairment proxy did not start:\n" + "\n".join(self.log))
        result = subprocess.run(redirect_rule("-A", self.transport, self.port), capture_output=True, text=True)
        if result.returncode != 0:
            self.stop()
            raise RuntimeError(f"iptables could not redirect port {self.port} to the proxy: {result.stderr.strip()}")
        self._redirected = True

    def _collect(self, ready: threading.Event) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            self.log.append(line.rstrip())
            if "listening on" in line:
                ready.set()
        ready.set()  # it ended: start() reports what it said

    def stop(self) -> list[str]:
        """Remove the redirect, stop the proxy; its log lines."""
        if self._redirected:
            subprocess.run(redirect_rule("-D", self.transport, self.port), capture_output=True)
            self._redirected = False
        if self._process and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
        return self.log
