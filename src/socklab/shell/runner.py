"""Running one command line for a client, within limits.

``shell=True`` on purpose: this *is* a remote shell, the client sends shell
syntax. What keeps it tame is around it:

- stdin is /dev/null, so a command that reads input ends instead of waiting;
- it runs in a new session (its own process group), so a time limit or an
  output cap kills the whole group -- ``sh``, its children, their children --
  not just the shell that started them;
- when the server runs as root, the command runs as an unprivileged user
  (``nobody``), with a minimal environment that leaks nothing of the server's.
"""

from __future__ import annotations

import logging
import os
import pwd
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass

from socklab.shell.protocol import TIMED_OUT, TRUNCATED, Result, refusal

READ_SIZE = 64 * 1024

log = logging.getLogger("socklab")


@dataclass(frozen=True)
class Limits:
    time_limit: float = 10.0
    max_output: int = 1 << 20  # stdout and stderr together
    run_as: str = "nobody"  # used only when the server runs as root
    workdir: str = "/tmp"


def _identity(limits: Limits) -> tuple[dict, dict]:
    """Popen arguments that set the user, and the environment to give the command."""
    if os.geteuid() == 0:
        user = pwd.getpwnam(limits.run_as)
        switch = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    else:
        user = pwd.getpwuid(os.geteuid())
        switch = {}  # not root: we cannot switch, and need not
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": limits.workdir,
        "USER": user.pw_name,
        "LOGNAME": user.pw_name,
        "SHELL": "/bin/sh",
    }
    return switch, env


def check_identity(limits: Limits) -> None:
    """Raise OSError now, at server start, if commands could not be run -- or stopped -- as configured.

    As root without CAP_SETUID/CAP_SETGID the switch to ``run_as`` fails;
    without CAP_KILL, root cannot signal another user's processes, so a time
    limit could not be enforced. Better to refuse to start than to find out
    on the first runaway command.
    """
    switch, env = _identity(limits)
    proc = subprocess.Popen(["sleep", "30"], stdin=subprocess.DEVNULL, env=env, cwd=limits.workdir,
                            start_new_session=True, **switch)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass  # it could not be killed: the error above says why


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # pid == pgid: start_new_session made it the leader
    except ProcessLookupError:
        pass  # already gone
    except PermissionError:
        # Root without CAP_KILL may not signal another user's processes;
        # check_identity() refuses to start in that case, so this is rare.
        log.error("not allowed to kill command %d (is CAP_KILL missing?)", proc.pid)


def _reap(proc: subprocess.Popen) -> int:
    try:
        return proc.wait(timeout=5)  # SIGKILL cannot be caught: only a kill that failed gets here late
    except subprocess.TimeoutExpired:
        log.error("command %d survived SIGKILL of its group (is CAP_KILL missing?); left running", proc.pid)
        return -signal.SIGKILL


def run_command(command: str, limits: Limits) -> Result:
    """Run ``command`` with ``sh -c``; never raises for what the command does."""
    started = time.monotonic()
    try:
        switch, env = _identity(limits)
        proc = subprocess.Popen(command, shell=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True, cwd=limits.workdir, env=env, **switch)
    except KeyError:
        return refusal(f"no user {limits.run_as!r} to run commands as")
    except ValueError as exc:  # e.g. an embedded NUL byte
        return refusal(str(exc))
    except OSError as exc:
        return refusal(f"cannot start the command: {exc.strerror or exc}")
    outputs = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    flags = _collect(proc, outputs, started + limits.time_limit, limits.max_output)
    if flags:
        _kill_group(proc)
        status = _reap(proc)
    else:
        try:
            # Both pipes ended, but the shell may still run (it closed them
            # itself): bounded by the time limit too.
            status = proc.wait(timeout=max(0.0, started + limits.time_limit - time.monotonic()))
        except subprocess.TimeoutExpired:
            flags |= TIMED_OUT
            _kill_group(proc)
            status = _reap(proc)
    for pipe in outputs:
        pipe.close()
    elapsed_ms = int((time.monotonic() - started) * 1000)
    return Result(bytes(outputs[proc.stdout]), bytes(outputs[proc.stderr]), status, flags, elapsed_ms)


def _collect(proc: subprocess.Popen, outputs: dict, deadline: float, cap: int) -> int:
    """Read stdout and stderr as they come, until both end or a limit is hit; the flags hit."""
    total = 0
    with selectors.DefaultSelector() as selector:
        for pipe in outputs:
            selector.register(pipe, selectors.EVENT_READ)
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                return TIMED_OUT
            for key, _ in selector.select(left):
                chunk = os.read(key.fd, READ_SIZE)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                room = cap - total
                outputs[key.fileobj] += chunk[:room]
                total += min(len(chunk), room)
                if len(chunk) > room:
                    return TRUNCATED  # no point letting it run: nobody will see the rest
    return 0
