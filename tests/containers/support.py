"""Helpers shared by the container tests: commands in a container, and a server's log."""

from __future__ import annotations

import re
import time


def sh(container, command: str) -> tuple[int, str]:
    """Run ``command`` with sh in a testcontainers container: (exit code, output)."""
    result = container.exec(["sh", "-c", command])
    return result.exit_code, result.output.decode(errors="replace")


class ServerLog:
    """A server container's log, in the lines written since a test began.

    ``log("text")`` (or ``log.wait(...)``) waits, bounded, until the log says
    it -- a string or a compiled regex -- and returns the log since the start.
    """

    def __init__(self, container) -> None:
        self.container = container
        self.start = len(container.get_logs()[0])

    def since_start(self) -> str:
        return self.container.get_logs()[0][self.start:].decode(errors="replace")

    def wait(self, text: str | re.Pattern, times: int = 1, timeout: float = 10) -> str:
        def count(log: str) -> int:
            return len(text.findall(log)) if isinstance(text, re.Pattern) else log.count(text)

        deadline = time.monotonic() + timeout
        while True:
            log = self.since_start()
            if count(log) >= times:
                return log
            if time.monotonic() > deadline:
                raise AssertionError(f"the server log never said {text!r}"
                                     f"{f' {times} times' if times > 1 else ''}; since the test began it said:\n{log}")
            time.sleep(0.1)

    __call__ = wait

    def assert_healthy(self) -> None:
        """The server still runs, and nothing reached its handle_error() (a bug of ours)."""
        wrapped = self.container.get_wrapped_container()
        wrapped.reload()
        log = self.since_start()
        assert wrapped.status == "running", log
        assert "Traceback" not in log and "unexpected error" not in log, log
