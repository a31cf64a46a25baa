"""Fuzzing a socklab server that runs as a real process on loopback.

Shared by every fuzz test; what differs per exercise (how to start its server,
the inputs, what a right answer is, its normal client) is in targets.py.

    inputs      hypothesis strategies built on the exercise's wire format
                (valid frames, then mutated, truncated, oversized,
                interleaved; see strategies.py); then, as hypothesis draws
                only a few hundred inputs a second, many more derived from
                those by the same mutations drawn from a seeded random
                generator (splicing two inputs interleaves conversations);
                and raw random bytes
    workers     threads, each sending one input per connection (or burst of
                datagrams) and reading until the server closes, all bounded
    monitor     every second the server's RSS (/proc/<pid>/status VmRSS);
                every few seconds a progress line, and the exercise's normal
                client run against the server while the fuzzing goes on
    afterwards  the process still runs, its RSS stayed under the bound, its
                log shows no error of ours, and the normal client still gets
                right answers

One input is one connection: every one starts from a fresh server-side
state, so a failing input can be replayed alone: failing inputs are written
whole beside the server's log.

SOCKLAB_FUZZ_INPUTS sets the inputs per server (default: a quick sample, as
in ``make test``; ``make fuzz`` sets 100000); SOCKLAB_FUZZ_SEED the seed.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import random
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

SAMPLE_INPUTS = 300
INPUTS = int(os.environ.get("SOCKLAB_FUZZ_INPUTS", SAMPLE_INPUTS))
SEED = int(os.environ.get("SOCKLAB_FUZZ_SEED", "6"))

#: Inputs drawn by hypothesis: half of a sample, a twentieth of a long run.
#: Of the rest, RAW_SHARE are raw random bytes (free of any idea of the wire
#: format), the others derived from hypothesis's by random mutations.
HYPOTHESIS_MIN, HYPOTHESIS_SHARE = 150, 0.05
RAW_SHARE = 0.3
#: Derived inputs are made from drawn inputs up to this size (memory).
CORPUS_MAX = 128 * 1024
#: Inputs per hypothesis example: drawing a list amortises hypothesis's
#: per-example overhead (about 1 ms), which would otherwise cap the rate.
BATCH = 16

#: A connection that neither answers nor closes within this time after our
#: last byte counts as a hang. Generous: the machine's CPU is shared.
STALL_SECONDS = 20.0
#: Bytes of an answer kept for the oracle; beyond, it is read and dropped.
KEEP = 4 << 20
#: Failing inputs kept (whole) for the report; the rest are counted.
KEPT_FAILURES = 100
#: Wall-clock limit of one fuzz run, whatever the input count: a bound, not a target.
RUN_LIMIT = 20 * 60.0
#: How long the normal client may take for one check.
REFERENCE_TIMEOUT = 10.0
#: RSS allowed over the start, besides what each target says one connection
#: may hold: a thread's touched stack, per connection; and glibc's malloc
#: arenas (up to 8 per core, one per thread that allocates at once), which
#: keep freed memory for reuse rather than give it back.
STACK_KIB = 128
ARENA_SLACK_KIB = 48 * 1024

ENDS = ("half", "half", "half", "close", "reset")
MUTATIONS = ("truncate", "flip", "insert", "delete", "duplicate", "oversize")


@dataclass
class Input:
    """What one fuzz client sends: each chunk by its own send (TCP_NODELAY),
    so the server's recv sees frames cut where the chunks are cut."""

    chunks: list[bytes]
    end: str = "half"  # half: SHUT_WR, read until the server closes; close: close at once; reset: RST
    origin: str = ""

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)

    def __repr__(self) -> str:
        data = self.data
        shown = repr(data[:200]) + (f"... ({len(data)} bytes)" if len(data) > 200 else "")
        return f"Input({self.origin}, end={self.end}, {len(self.chunks)} chunks: {shown})"


@dataclass
class Outcome:
    received: bytes = b""
    eof: bool = False  # the server closed its side (FIN) and we read up to it
    reset: bool = False  # the connection was reset, or a send failed: the answer may be cut
    overflow: bool = False  # more than KEEP bytes came back: the tail was dropped
    stalled: bool = False  # no answer and no close within STALL_SECONDS


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given offsets (taken modulo its length, deduplicated)."""
    if not data:
        return [b""]
    points = sorted({c % len(data) for c in cuts} - {0})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


def mutate(data: bytes, op: str, at: int, n: int, extra: bytes) -> bytes:
    """One mutation of ``data`` at offset ``at``; ``n`` is a small count, ``extra``
    some bytes (a few random ones, or for "oversize" a run at the exercise's limits).
    Hypothesis (strategies.py) and the seeded generator (derived_input) both draw
    the arguments; the mutations themselves are these, once."""
    at = min(at, len(data))
    if op == "truncate":
        return data[:at]
    if op == "flip":
        return data[:at] + extra[:1] + data[at + 1 :]
    if op in ("insert", "oversize"):
        return data[:at] + extra + data[at:]
    if op == "delete":
        return data[:at] + data[at + n :]
    if op == "duplicate":
        return data[:at] + data[max(0, at - n) : at] + data[at:]
    raise ValueError(f"unknown mutation {op!r}")


def mutate_randomly(rng: random.Random, data: bytes, oversize: list[bytes]) -> bytes:
    for _ in range(rng.choice((1, 1, 2, 3))):
        op = rng.choice(MUTATIONS)
        extra = rng.choice(oversize) if op == "oversize" and oversize else rng.randbytes(rng.randint(1, 8))
        data = mutate(data, op, rng.randint(0, len(data)), rng.randint(1, 64), extra)
    return data


# --- the server process --------------------------------------------------------


def free_port(count: int = 1, kind: int = socket.SOCK_STREAM) -> int:
    """A port P such that P .. P+count-1 are free on 127.0.0.1 (a race, retried by the caller)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + count > 65535:
            continue
        try:
            for port in range(base, base + count):
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no {count} consecutive free ports on 127.0.0.1")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


#: Lines of a server log that say the fault was ours, not the client's.
OUR_FAULTS = ("unexpected error", "Traceback", "the fault is ours")


class ServerProcess:
    """``python -m socklab server <name> --host 127.0.0.1 --port P <args>`` as a child process.

    Its log goes to a file (a pipe nobody reads would fill and block it).
    Started in the context manager, stopped by SIGTERM (then SIGKILL) at exit.
    """

    def __init__(self, name: str, args: list[str], log_path: Path, ports: int = 1, udp: bool = False) -> None:
        self.name, self.args, self.log_path, self.ports, self.udp = name, args, log_path, ports, udp
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def __enter__(self) -> ServerProcess:
        for attempt in range(5):  # the free port may be taken between our check and the server's bind
            self.port = free_port(self.ports, socket.SOCK_DGRAM if self.udp else socket.SOCK_STREAM)
            command = [sys.executable, "-m", "socklab", "server", self.name, "--host", "127.0.0.1",
                       "--port", str(self.port), *self.args]
            with open(self.log_path, "wb") as log:
                self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            if self._wait_listening():
                return self
            self._stop()
        raise RuntimeError(f"the {self.name} server did not start:\n{self.log_tail()}")

    def __exit__(self, *exc_info: object) -> None:
        self._stop()

    def _wait_listening(self, seconds: float = 20.0) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self.log_path.read_text(errors="replace").count("listening on") >= self.ports:
                return True
            time.sleep(0.05)
        return False

    def _stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def address(self, offset: int = 0) -> tuple[str, int]:
        return ("127.0.0.1", self.port + offset)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - 64 * 1024))
                return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def our_faults(self, context: int = 12) -> list[str]:
        """Excerpts of the log around each line where the server blames itself (a bug of ours)."""
        with open(self.log_path, errors="replace") as f:
            lines = f.readlines()
        excerpts, shown_until = [], -1
        for i, line in enumerate(lines):
            if i > shown_until and any(mark in line for mark in OUR_FAULTS):
                excerpts.append("".join(lines[max(0, i - 2) : i + context]))
                shown_until = i + context
                if len(excerpts) >= 5:
                    break
        return excerpts


# --- one fuzz client -------------------------------------------------------------


def tcp_exchange(address: tuple[str, int], inp: Input, stall: float = STALL_SECONDS) -> Outcome:
    """Send ``inp`` on a new connection while reading whatever comes back.

    Reading while sending matters: a server that answers as it reads (echo,
    pipelined HTTP) would otherwise fill our receive buffer, block in its
    send, stop reading, and both sides would wait for ever.
    """
    out = Outcome()
    kept = bytearray()
    try:
        sock = socket.create_connection(address, timeout=stall)
    except OSError:
        out.reset = True  # e.g. a full backlog for longer than `stall`: reported as a failure to answer
        out.stalled = True
        return out
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        with selectors.DefaultSelector() as sel:
            sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
            reading = sending = True

            def read_some() -> None:
                nonlocal reading
                try:
                    data = sock.recv(256 * 1024)
                except BlockingIOError:
                    return
                except OSError:  # reset: what arrived before the RST was read already
                    out.reset, reading = True, False
                    return
                if not data:
                    out.eof, reading = True, False
                elif len(kept) < KEEP:
                    kept.extend(data[: KEEP - len(kept)])
                else:
                    out.overflow = True

            deadline = time.monotonic() + stall
            for chunk in inp.chunks:
                view = memoryview(chunk)
                while view and sending and reading:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        out.stalled = True
                        return out
                    for _, mask in sel.select(left):
                        if mask & selectors.EVENT_READ:
                            read_some()
                        if mask & selectors.EVENT_WRITE and reading:
                            try:
                                view = view[sock.send(view) :]
                            except BlockingIOError:
                                pass
                            except OSError:  # the server closed on us; it may have said why first
                                out.reset, sending = True, False
            if inp.end == "reset":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return out
            if inp.end == "close":
                return out
            if sending and reading:
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    out.reset = True
            # What the server said before it closed or reset is still ours to read.
            sel.modify(sock, selectors.EVENT_READ)
            deadline = time.monotonic() + stall
            while reading:
                left = deadline - time.monotonic()
                if left <= 0:
                    out.stalled = True
                    break
                if sel.select(left):
                    read_some()
            return out
    finally:
        out.received = bytes(kept)
        sock.close()


def udp_exchange(address: tuple[str, int], inp: Input, dropped: Callable[[int], bool] = lambda i: False,
                 wait: float = 1.0) -> Outcome:
    """Each chunk is one datagram, sent from one new socket; the echoes that come back.

    ``received`` holds the echoes as length-prefixed records (4 bytes each):
    datagrams have boundaries, and the oracle compares them one by one.
    A datagram the kernel refuses to send (EMSGSIZE) is skipped; ``dropped(i)``
    says whether the server will drop the i-th datagram it gets from a new
    peer, so that only the echoes due are waited for (at most ``wait`` s).
    """
    out = Outcome()
    records = bytearray()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sent = 0
        for chunk in inp.chunks:
            try:
                sock.sendto(chunk, address)
            except OSError:
                continue
            sent += 1
        due = sum(not dropped(i) for i in range(sent))
        deadline = time.monotonic() + wait
        for _ in range(due):  # a lost datagram is UDP's right: waited for a while, not for ever
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                data, sender = sock.recvfrom(65536)
            except socket.timeout:
                break
            if sender[:2] == address[:2]:
                records += struct.pack("!I", len(data)) + data
        out.received = bytes(records)
        out.eof = True
    return out


def udp_records(received: bytes) -> Iterator[bytes]:
    at = 0
    while at < len(received):
        (n,) = struct.unpack_from("!I", received, at)
        yield received[at + 4 : at + 4 + n]
        at += 4 + n


# --- inputs ----------------------------------------------------------------------


def hypothesis_inputs(strategy: st.SearchStrategy[Input], count: int, seed: int, emit: Callable[[Input], None]) -> int:
    """Draw ``count`` inputs from ``strategy`` and hand each to ``emit``; returns how many.

    Hypothesis is used as a generator of structured inputs here: the server
    runs in another process and keeps state, so shrinking a failure is not
    possible; a failing input is kept as it was sent instead. Each example
    is a list of inputs (drawing one input per example would cap the rate at
    hypothesis's per-example overhead, about 1 ms); as the lists' lengths
    vary, rounds with the next seeds follow until ``count`` are drawn.
    """
    emitted = 0

    def draw_round(round_seed: int) -> None:
        @settings(max_examples=math.ceil((count - emitted) / BATCH) + 1, database=None, deadline=None,
                  phases=[Phase.generate], suppress_health_check=list(HealthCheck), print_blob=False)
        @hypothesis_seed(round_seed)
        @given(st.lists(strategy, min_size=1, max_size=BATCH))
        def draw(batch: list[Input]) -> None:
            nonlocal emitted
            for inp in batch:
                if emitted < count:
                    emitted += 1
                    emit(inp)

        draw()

    for round_seed in range(seed, seed + 100):  # bounded: each round draws at least one example
        if emitted >= count:
            break
        draw_round(round_seed)
    return emitted


#: Bytes that text protocols care about: raw random bytes rarely hold a line.
TEXT_ALPHABET = b"\r\n\r\n :/%.0123456789aAzZ\t\x00\xff-_?#~\\"


def random_input(rng: random.Random, prefixes: list[bytes], alphabet: bytes = TEXT_ALPHABET, split_max: int = 32) -> Input:
    """Raw random bytes: no idea of the wire format, sometimes after a valid opening,
    sometimes drawn from a small ``alphabet`` of what text protocols care about."""
    roll = rng.random()
    if roll < 0.70:
        size = rng.randrange(0, 64)
    elif roll < 0.93:
        size = rng.randrange(64, 4096)
    elif roll < 0.995:
        size = rng.randrange(4096, 70 * 1024)
    else:
        size = rng.randrange(70 * 1024, 1 << 20)  # oversized
    if rng.random() < 0.3:
        data = bytes(rng.choices(alphabet, k=min(size, 4096)))
    else:
        data = rng.randbytes(size)
    if prefixes and rng.random() < 0.4:
        data = rng.choice(prefixes) + data
    return Input(_chunks(rng, data, split_max), rng.choice(ENDS), "random")


def _chunks(rng: random.Random, data: bytes, split_max: int = 32) -> list[bytes]:
    return split(data, [rng.randrange(1 << 30) for _ in range(rng.choice((0, 0, 1, 3, split_max)))])


def derived_input(rng: random.Random, corpus: list[Input], oversize: list[bytes], datagrams: bool) -> Input:
    """A drawn input, mutated again: maybe spliced with another (two conversations
    interleaved), mutated, cut into new chunks, ended another way."""
    first = rng.choice(corpus)
    if datagrams:  # one datagram is one message: mutate datagrams, never the stream
        parts = list(first.chunks)
        if rng.random() < 0.3:
            other = rng.choice(corpus).chunks
            parts = parts[: rng.randint(0, len(parts))] + list(other[rng.randint(0, len(other)) :])
        parts = [mutate_randomly(rng, d, oversize) if rng.random() < 0.5 else d for d in parts[:8]]
        return Input(parts or [b""], "half", "derived")
    data = first.data
    if rng.random() < 0.3:
        other = rng.choice(corpus).data
        data = data[: rng.randint(0, len(data))] + other[rng.randint(0, len(other)) :]
    if rng.random() < 0.8:
        data = mutate_randomly(rng, data, oversize)
    return Input(_chunks(rng, data), rng.choice(ENDS), "derived")


# --- the run -----------------------------------------------------------------------


@dataclass
class Target:
    """One exercise's server as the fuzzer sees it (built in targets.py)."""

    name: str
    strategy: st.SearchStrategy[Input]
    exchange: Callable[[Input], Outcome]  # send one input to the running server
    check: Callable[[Input, Outcome], str | None]  # what is wrong with that answer, or None
    reference: Callable[[], None]  # the normal client, asserting right answers
    per_connection_kib: int  # the most the server may hold for one connection (see targets.py)
    prefixes: list[bytes] = field(default_factory=list)  # valid openings for raw random bytes
    oversize: list[bytes] = field(default_factory=list)  # runs at the exercise's limits
    datagrams: bool = False  # each chunk is a datagram: mutate them one by one
    alphabet: bytes = TEXT_ALPHABET  # of raw random text
    fixed_kib: int = 0  # memory the server may grow to hold whatever the clients, e.g. a bounded table
    workers: int = 12

    def rss_bound_kib(self, start_kib: int) -> int:
        """The start, plus each concurrent connection's worst case, plus the arenas' slack.
        A leak of even a few hundred bytes per input crosses it within 100,000 inputs."""
        return start_kib + self.fixed_kib + self.workers * (self.per_connection_kib + STACK_KIB) + ARENA_SLACK_KIB


@dataclass
class Report:
    name: str
    inputs: int = 0
    hypothesis: int = 0
    derived: int = 0
    stall_count: int = 0
    wrong_count: int = 0
    stalls: list[Input] = field(default_factory=list)  # the first KEPT_FAILURES of each
    wrong: list[tuple[Input, str]] = field(default_factory=list)
    reference_failures: list[str] = field(default_factory=list)
    rss_start_kib: int = 0
    rss_max_kib: int = 0
    rss_end_kib: int = 0
    seconds: float = 0.0
    died: str = ""

    @property
    def rate(self) -> float:
        return self.inputs / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        return (f"fuzz {self.name}: {self.inputs} inputs ({self.hypothesis} drawn by hypothesis, {self.derived} "
                f"derived from those, the rest raw random bytes) in {self.seconds:.1f} s, "
                f"{self.rate:.0f}/s; RSS {self.rss_start_kib / 1024:.1f} MiB at start, max {self.rss_max_kib / 1024:.1f}, "
                f"end {self.rss_end_kib / 1024:.1f}; stalls {self.stall_count}, wrong answers {self.wrong_count}, "
                f"normal client failures {len(self.reference_failures)}")


class _Abort(Exception):
    pass


def _say(text: str) -> None:
    # Shown by `make fuzz` (pytest -s); in `make test`, pytest's capture keeps it for failures.
    print(text, flush=True)


def run(server: ServerProcess, target: Target, inputs: int = INPUTS, seed: int = SEED) -> Report:
    """Fuzz ``server`` with ``inputs`` inputs; the report says what went wrong, if anything."""
    # The oracles run the exercise's own code, which logs each protocol error
    # with its exception -- whose traceback holds the whole input. pytest keeps
    # every record of a test: 100,000 inputs would keep gigabytes.
    logger = logging.getLogger("socklab")
    was_disabled, logger.disabled = logger.disabled, True
    try:
        return _run(server, target, inputs, seed)
    finally:
        logger.disabled = was_disabled


def _run(server: ServerProcess, target: Target, inputs: int, seed: int) -> Report:
    report = Report(target.name)
    target.reference()  # warm: the first answers allocate what the server keeps anyway
    report.rss_start_kib = report.rss_max_kib = server.rss_kib()
    work: queue.Queue[Input | None] = queue.Queue(maxsize=target.workers * 4)
    lock = threading.Lock()
    stop = threading.Event()
    started = time.monotonic()
    done = 0

    def worker() -> None:
        nonlocal done
        while (inp := work.get()) is not None:
            try:
                outcome = target.exchange(inp)
                problem = "no answer and no close" if outcome.stalled else target.check(inp, outcome)
            except Exception as exc:  # a bug of the harness must show, not silently stop a worker
                outcome, problem = Outcome(), f"harness error: {exc!r}"
            with lock:
                done += 1
                if outcome.stalled:
                    report.stall_count += 1
                    if len(report.stalls) < KEPT_FAILURES:
                        report.stalls.append(inp)
                elif problem:
                    report.wrong_count += 1
                    if len(report.wrong) < KEPT_FAILURES:
                        report.wrong.append((inp, problem))

    def reference() -> None:
        try:
            target.reference()
        except Exception as exc:  # AssertionError or a socket error: either is a failure to serve
            report.reference_failures.append(f"after {done} inputs: {exc!r}")

    def monitor() -> None:
        last_line = last_reference = time.monotonic()
        while not stop.wait(1.0):
            if not server.alive():
                report.died = f"the server exited with status {server.proc.returncode}"
                return
            try:
                report.rss_max_kib = max(report.rss_max_kib, server.rss_kib())
            except (OSError, RuntimeError):
                continue
            now = time.monotonic()
            if now - last_reference >= 10:
                reference()
                last_reference = now
            if now - last_line >= 5:
                rate = done / (now - started)
                _say(f"  fuzz {target.name}: {done}/{inputs} inputs, {rate:.0f}/s, "
                     f"RSS {server.rss_kib() / 1024:.1f} MiB (max {report.rss_max_kib / 1024:.1f})")
                last_line = now

    def emit(inp: Input) -> None:
        while True:
            if report.died or time.monotonic() - started > RUN_LIMIT:
                raise _Abort
            try:
                work.put(inp, timeout=1.0)
                return
            except queue.Full:
                continue

    threads = [threading.Thread(target=worker, daemon=True, name=f"fuzz-{i}") for i in range(target.workers)]
    watcher = threading.Thread(target=monitor, daemon=True, name="fuzz-monitor")
    for t in [*threads, watcher]:
        t.start()
    try:
        corpus: list[Input] = []

        def keep(inp: Input) -> None:
            if len(inp.data) <= CORPUS_MAX:
                corpus.append(inp)
            emit(inp)

        drawn = min(inputs, max(HYPOTHESIS_MIN, int(inputs * HYPOTHESIS_SHARE)))
        report.hypothesis = hypothesis_inputs(target.strategy, drawn, seed, keep)
        rng = random.Random(seed)
        for _ in range(inputs - report.hypothesis):
            if corpus and rng.random() >= RAW_SHARE:
                emit(derived_input(rng, corpus, target.oversize, target.datagrams))
                report.derived += 1
            else:
                emit(random_input(rng, target.prefixes, target.alphabet))
    except _Abort:
        pass
    finally:
        for _ in threads:
            try:
                work.put(None, timeout=STALL_SECONDS * 2)
            except queue.Full:
                break
        for t in threads:
            t.join(timeout=STALL_SECONDS * 2 + 5)
        stop.set()
        watcher.join(timeout=REFERENCE_TIMEOUT * 3)
    report.inputs = done
    report.seconds = time.monotonic() - started
    if not server.alive():
        report.died = report.died or f"the server exited with status {server.proc.returncode}"
        return report
    reference()
    report.rss_end_kib = server.rss_kib()
    report.rss_max_kib = max(report.rss_max_kib, report.rss_end_kib)
    return report


def keep_failures(server: ServerProcess, report: Report) -> Path:
    """The failing inputs, whole, beside the server's log: ``end chunks`` per line, Python literals."""
    path = server.log_path.with_name(f"{report.name}-failing-inputs.txt")
    with open(path, "w") as f:
        for inp in [*report.stalls, *(inp for inp, _ in report.wrong)]:
            f.write(f"{inp.end} {inp.chunks!r}\n")
    return path


def assert_survived(server: ServerProcess, target: Target, report: Report, inputs: int = INPUTS) -> None:
    """Every promise of a fuzz run, each failure with what is needed to replay it."""
    bound = target.rss_bound_kib(report.rss_start_kib)
    _say(f"{report.line()}; RSS bound {bound / 1024:.1f} MiB")
    assert not report.died, f"{report.died}\n{server.log_tail()}"
    assert server.alive(), f"the server is gone\n{server.log_tail()}"
    assert report.inputs == inputs, f"only {report.inputs} of {inputs} inputs were sent (time limit hit?)"
    faults = server.our_faults()
    assert not faults, "the server logged errors of its own:\n" + "\n---\n".join(faults)
    assert not report.stall_count, (
        f"{report.stall_count} connections got neither an answer nor a close within {STALL_SECONDS:g} s, e.g.:\n"
        + "\n".join(map(repr, report.stalls[:5])) + f"\nwhole inputs in {keep_failures(server, report)}")
    assert not report.wrong_count, (
        f"{report.wrong_count} wrong answers, e.g.:\n"
        + "\n".join(f"{problem}\n  for {inp!r}" for inp, problem in report.wrong[:5])
        + f"\nwhole inputs in {keep_failures(server, report)}")
    assert not report.reference_failures, "the normal client failed:\n" + "\n".join(report.reference_failures[:5])
    assert report.rss_max_kib <= bound, (
        f"RSS reached {report.rss_max_kib / 1024:.1f} MiB, over the bound of {bound / 1024:.1f} MiB")
