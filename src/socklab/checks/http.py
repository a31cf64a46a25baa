"""Checks of the http exercise: GET (and HEAD) of the files under a folder, HTTP/1.1.

The contract (labs/http/README.md, "Your own server and client"):

    python3 server.py PORT ROOT        answer GET and HEAD of the files under ROOT:
                                       200 with Content-Length (HEAD: no body), 404
                                       for a missing file, 403 or 404 for a path
                                       leading out of ROOT, 400 for a malformed
                                       request line; keep the connection for the
                                       next request (keep-alive); many clients at
                                       once; close a client silent for 5 s; refuse
                                       a request head over 64 KiB (431, or close)
    python3 client.py HOST PORT PATH...
                                       GET each PATH in order (one connection, or
                                       one each), print each body on stdout, exactly
                                       Content-Length bytes of it; a status other
                                       than 200, a close before the end of a body,
                                       or 10 s without a byte: a message on stderr
                                       (with the status), exit 1

Every check applies to HTTP: it is a stream protocol whose messages end at an
empty line (the head) and after Content-Length bytes (the body). The server
gets ``server_setup``'s files: FILES under ROOT, and SECRET beside ROOT, which
no request may reach.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from socklab.checks.model import (
    WAIT,
    ClientCheck,
    ClientOutcome,
    Contract,
    ServerCheck,
    Target,
    Verdict,
    closed_within,
    closes_silent_client,
    connect,
    failed_clearly,
    printed,
    recv_until,
    show,
    vanish,
)
from socklab.samples import blocks

PORT = 8080
TRANSPORT = "tcp"
CONTRACT = Contract(
    server=["python3", "{dir}/server.py", "{port}", "{root}"],
    client=["python3", "{dir}/client.py", "{host}", "{port}"],
    reference_server=["python3", "-m", "socklab", "server", "http", "--port", "{port}", "--root", "{root}",
                      "--timeout", "5", "--request-timeout", "5"],
    reference_client=["python3", "-m", "socklab", "client", "http", "--host", "{host}", "--port", "{port}",
                      "--timeout", "10", "--fail", "--body-only"],
    server_setup="python3 -c 'import sys; from socklab.checks.http import write_files; write_files(sys.argv[1])' "
                 "{root}",
)
IDLE_LIMIT = 5.0  # the contract's: a silent client is closed after this
BIG_SIZE = 3 * (1 << 20) + 7  # over any one recv() or send(), and not a round number
HELLO = b"Hello, World\n"
ABOUT = b"Served to make check-http: two files on one connection, one after the other.\n"
FILES = {"hello.txt": HELLO, "about.txt": ABOUT}
SECRET = b"the secret beside the served folder: no request may read this\n"
MAX_HEAD = 64 * 1024
#: Time limits (s): generous, for a loaded machine (a client's own timeout is 10 s).
LIMIT, BIG_LIMIT = 40.0, 60.0


def big_file() -> bytes:
    """big.bin: reproducible bytes (socklab.samples), so a lost or repeated piece shows."""
    return b"".join(blocks("big.bin", BIG_SIZE))


def write_files(root: str) -> None:
    """What server_setup writes: FILES and big.bin under ``root``, SECRET beside it."""
    folder = Path(root)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in {**FILES, "big.bin": big_file()}.items():
        (folder / name).write_bytes(data)
    (folder.parent / "secret.txt").write_bytes(SECRET)


def request(method: str, path: str, *headers: str) -> bytes:
    return "".join(f"{line}\r\n" for line in (f"{method} {path} HTTP/1.1", "Host: server", *headers, "")).encode()


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes


class Conn:
    """One tester connection, with what was received beyond the last response kept for the next."""

    def __init__(self, target: Target, timeout: float = WAIT) -> None:
        self.sock = connect(target, timeout)
        self.buffer = b""

    def __enter__(self) -> Conn:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, done, timeout: float, limit: int) -> str:
        """recv() into the buffer until ``done(buffer)``; "" or what stopped it."""
        more, stopped = recv_until(self.sock, lambda data: done(self.buffer + data), limit=limit, timeout=timeout)
        self.buffer += more
        return stopped

    def reply(self, method: str = "GET", body: bool = True, timeout: float = WAIT) -> tuple[Reply | None, str]:
        """The next response, or None and what was wrong with it."""
        stopped = self._fill(lambda data: b"\r\n\r\n" in data or len(data) > MAX_HEAD, timeout, MAX_HEAD)
        if b"\r\n\r\n" not in self.buffer:
            if not self.buffer:
                return None, f"no response ({stopped})"
            return None, f"the response head did not end with an empty line: got {show(self.buffer)} ({stopped})"
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        status_line = re.fullmatch(rb"HTTP/1\.[01] (\d{3})(?: .*)?", lines[0])
        if not status_line:
            return None, f"a response starts with a status line like b'HTTP/1.1 200 OK', got {show(head)}"
        headers = {}
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon:
                return None, f"a header line without a colon: {show(line)}"
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        status = int(status_line.group(1))
        if method == "HEAD" or not body:
            return Reply(status, headers, b""), ""
        size = headers.get("content-length", "")
        if not size.isdigit():
            return None, (f"a {status} response without a Content-Length ({show(head)}): on a connection kept "
                          "open, nothing else says where its body ends")
        need = int(size)
        stopped = self._fill(lambda data: len(data) >= need, timeout, need + MAX_HEAD)
        if len(self.buffer) < need:
            return None, f"Content-Length: {need}, but the body stopped after {len(self.buffer)} bytes ({stopped})"
        reply_body, self.buffer = self.buffer[:need], self.buffer[need:]
        return Reply(status, headers, reply_body), ""


def expect_file(conn: Conn, name: str, method: str = "GET", timeout: float = WAIT) -> Verdict:
    """Ask for ``/name``; expect 200 and the file (HEAD: its Content-Length, no body)."""
    want = big_file() if name == "big.bin" else FILES[name]
    conn.send(request(method, f"/{name}"))
    reply, problem = conn.reply(method, timeout=timeout)
    asked = f"{method} /{name}"
    if reply is None:
        return Verdict.fail(f"{asked}: {problem}")
    if reply.status != 200:
        return Verdict.fail(f"{asked}: expected status 200, got {reply.status}")
    if method == "HEAD":
        if reply.headers.get("content-length") != str(len(want)):
            return Verdict.fail(f"{asked}: expected Content-Length: {len(want)} (what a GET would get), got "
                                f"{reply.headers.get('content-length')!r}")
        return Verdict.ok()
    if reply.body != want:
        return Verdict.fail(f"{asked}: expected the file's {len(want)} bytes {show(want)}, got {show(reply.body)}"
                            + first_difference(want, reply.body))
    return Verdict.ok()


def first_difference(want: bytes, got: bytes) -> str:
    at = next((i for i, (a, b) in enumerate(zip(want, got)) if a != b), None)
    return f" (they differ from byte {at})" if at is not None else ""


def still_serving(target: Target, after: str) -> Verdict:
    """A normal request on a new connection, after a bad input."""
    try:
        with Conn(target) as conn:
            verdict = expect_file(conn, "hello.txt")
    except OSError as exc:
        verdict = Verdict.fail(f"cannot connect ({exc.strerror or exc})")
    if verdict.passed:
        return verdict
    return Verdict.fail(f"after {after}, the next client: {verdict.why}. One client's bad request must end "
                        "that client's connection only: catch the error, close that socket, keep serving")


# --- the student's server -------------------------------------------------------


def server_basic(target: Target) -> Verdict:
    with Conn(target) as conn:
        for name in ("hello.txt", "about.txt"):
            verdict = expect_file(conn, name)
            if not verdict.passed:
                return Verdict.fail(f"{verdict.why}" + (" (the second request, on the same connection: keep it "
                                                        "open after a response, HTTP/1.1 keep-alive)"
                                                        if name == "about.txt" else ""))
    return Verdict.ok()


def server_head(target: Target) -> Verdict:
    with Conn(target) as conn:
        verdict = expect_file(conn, "hello.txt", "HEAD")
        if verdict.passed:
            verdict = expect_file(conn, "about.txt")
            if not verdict.passed:
                return Verdict.fail(f"after a HEAD, on the same connection: {verdict.why}. The answer to HEAD "
                                    "is the head a GET would get and no body: a body would be read as the next "
                                    "response")
    return verdict


def server_partial_recv(target: Target) -> Verdict:
    with Conn(target) as conn:
        verdict = expect_file(conn, "hello.txt", timeout=10)
    if verdict.passed:
        return verdict
    return Verdict.fail(f"the request arrived one byte at a time: {verdict.why}. A recv() returns what has "
                        "arrived, not a request: keep reading until the empty line (b'\\r\\n\\r\\n')")


def server_pipelined(target: Target) -> Verdict:
    with Conn(target) as conn:
        conn.send(request("GET", "/hello.txt") + request("GET", "/about.txt"))
        for name, want in (("hello.txt", HELLO), ("about.txt", ABOUT)):
            reply, problem = conn.reply()
            if reply is None or reply.status != 200 or reply.body != want:
                got = problem or f"status {reply.status}, body {show(reply.body)}"
                return Verdict.fail(f"two requests arrived in one recv() (pipelined); the answer to /{name}: "
                                    f"{got}. Answer both, in order: the bytes after the first request's empty "
                                    "line are the start of the next one, keep them for the next request")
    return Verdict.ok()


def server_large_file(target: Target) -> Verdict:
    with Conn(target) as conn:
        verdict = expect_file(conn, "big.bin", timeout=20)
    if verdict.passed:
        return verdict
    return Verdict.fail(f"a {BIG_SIZE}-byte file: {verdict.why}. send() may send less than it is given: use "
                        "sendall(), and send the whole file")


def server_client_vanishes(target: Target) -> Verdict:
    half = connect(target)
    half.sendall(b"GET /hello.txt HTTP/1.1\r\nHo")
    vanish(half)  # RST, as when a client is killed in the middle of its request
    with Conn(target) as reader:
        reader.send(request("GET", "/big.bin"))
        recv_until(reader.sock, lambda d: len(d) > 10_000)
        vanish(reader.sock)  # ...and one killed while the server sends it a big file
    time.sleep(0.5)
    return still_serving(target, "a client vanished mid-request and another mid-response (RST)")


def server_silent_client(target: Target) -> Verdict:
    return closes_silent_client(target, b"GET /hello.txt HTTP/1.1\r\n", IDLE_LIMIT)  # half a request, then nothing


def _trickle(sock: socket.socket, stop: threading.Event, seconds: float = 20.0) -> None:
    """A slow client: a byte of a header every half second, never the empty line, until ``stop``."""
    deadline = time.monotonic() + seconds
    try:
        while not stop.wait(0.5) and time.monotonic() < deadline:
            sock.sendall(b"x")
    except OSError:
        pass  # the server closed it: its business (a request deadline, say)


def server_concurrent_clients(target: Target) -> Verdict:
    others = 4
    stop = threading.Event()
    with connect(target) as slow:
        # Bytes keep coming, so a server serving one client at a time never gets to the others,
        # however its timeouts are set.
        slow.sendall(b"GET /about.txt HTTP/1.1\r\nHost: server\r\nX-Slow: ")
        trickler = threading.Thread(target=_trickle, args=(slow, stop), daemon=True)
        trickler.start()
        conns = []
        try:
            time.sleep(0.3)
            conns = [Conn(target) for _ in range(others)]
            for conn in conns:
                conn.send(request("GET", "/hello.txt"))
            for number, conn in enumerate(conns, 1):
                reply, problem = conn.reply()
                if reply is None or reply.body != HELLO:
                    got = problem or f"status {reply.status}, body {show(reply.body)}"
                    return Verdict.fail(f"while one client was slowly sending its request, client {number} of "
                                        f"{others} more: {got}. The server serves one client at a time: a thread "
                                        "per client, or selectors")
        finally:
            stop.set()
            trickler.join(2)
            for conn in conns:
                conn.sock.close()
    return Verdict.ok()


def server_not_found(target: Target) -> Verdict:
    with Conn(target) as conn:
        conn.send(request("GET", "/missing.txt"))
        reply, problem = conn.reply(body=False)
    if reply is None or reply.status != 404:
        return Verdict.fail(f"GET /missing.txt: expected status 404, got {problem or reply.status}: a missing "
                            "file is an answer (404 Not Found), not an exception")
    return still_serving(target, "a 404")


def server_malformed_request(target: Target) -> Verdict:
    for bad in (b"HELLO\r\n\r\n", b"this is not http\r\n\r\n"):
        with Conn(target) as conn:
            conn.send(bad)
            reply, problem = conn.reply(body=False)
        if reply is None or reply.status != 400:
            return Verdict.fail(f"sent {show(bad)}: expected status 400, got {problem or reply.status}: check "
                                "that the request line has three parts before using them, and answer "
                                "400 Bad Request")
    return still_serving(target, "a malformed request")


def server_huge_header(target: Target) -> Verdict:
    """70 000 bytes of one header and more, with no end: refused (4xx or close), not buffered for ever."""
    wait = 8.0
    deadline = time.monotonic() + wait
    with connect(target) as sock:
        try:
            sock.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: server\r\nX-Filler: " + b"a" * 70_000)
            # Keep trickling, so that an idle timeout is not what ends it.
            while time.monotonic() < deadline:
                if closed_within(sock, 0.5):
                    break
                sock.sendall(b"a" * 1024)
            else:
                return Verdict.fail(f"a request head of {70_000 + 1024 * int(wait * 2)} bytes without its end, "
                                    f"and the server was still reading after {wait:g} s: bound the head "
                                    "(64 KiB), then refuse it (431) and close, or one client can take all the "
                                    "memory")
        except OSError:
            pass  # the server closed while we sent: refused
    return still_serving(target, "a huge request head")


ESCAPES = ["/../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt", "//work/secret.txt",
           "/%2Fwork%2Fsecret.txt"]


def server_path_escape(target: Target) -> Verdict:
    for path in ESCAPES:
        with Conn(target) as conn:
            conn.send(request("GET", path))
            reply, problem = conn.reply(body=False)
            leaked = reply is not None and (reply.status == 200 or SECRET in conn.buffer)
        if leaked:
            return Verdict.fail(f"GET {path} answered {reply.status}: a file outside ROOT was served. Decode "
                                "%xx first, then resolve the path (os.path.realpath) and refuse (403) any that "
                                "is not inside ROOT")
        if reply is None or reply.status not in (400, 403, 404):
            return Verdict.fail(f"GET {path}: expected 403 or 404, got {problem or reply.status}")
    return still_serving(target, "requests for paths out of ROOT")


# --- the student's client -------------------------------------------------------


def partial_judge(outcome: ClientOutcome) -> Verdict:
    verdict = printed([HELLO.rstrip(b"\n")])(outcome)
    if verdict.passed:
        return verdict
    return Verdict.fail(f"the response came one byte at a time: {verdict.why}. One recv() is not one response: "
                        "read until the empty line, then Content-Length bytes")


def large_judge(outcome: ClientOutcome) -> Verdict:
    want = big_file()
    if outcome.status is None:
        return Verdict.fail(f"the client was still running at the time limit, after printing {len(outcome.stdout)} "
                            f"of {len(want)} bytes")
    if outcome.stdout != want:
        return Verdict.fail(f"a {len(want)}-byte body: the client printed {len(outcome.stdout)} bytes"
                            + first_difference(want, outcome.stdout)
                            + ": read until Content-Length bytes have arrived, each recv() gives only a part")
    if outcome.status != 0:
        return Verdict.fail(f"the body was right, but exit status {outcome.status}: {outcome.said()}")
    return Verdict.ok()


def keep_alive_judge(outcome: ClientOutcome) -> Verdict:
    verdict = printed([HELLO.rstrip(b"\n"), ABOUT.rstrip(b"\n")])(outcome)
    if verdict.passed:
        return verdict
    return Verdict.fail(f"the server kept the connection open after each body: {verdict.why}. Content-Length "
                        "says where a body ends: read exactly that many bytes, do not wait for the close")


def _requests(conn: socket.socket, answer, limit: int = 10) -> None:
    """Read requests on ``conn`` and ``answer(path)`` each, until the client closes (or 15 s of silence)."""
    buffer = b""
    for _ in range(limit):
        more, _stopped = recv_until(conn, lambda d, seen=buffer: b"\r\n\r\n" in seen + d, limit=MAX_HEAD, timeout=15)
        buffer += more
        if b"\r\n\r\n" not in buffer:
            return  # the client closed, or went silent
        head, buffer = buffer.split(b"\r\n\r\n", 1)
        parts = head.split(b"\r\n", 1)[0].split(b" ")
        if not answer(parts[1].decode("latin-1") if len(parts) == 3 else ""):
            return


def _response(body: bytes, status: str = "200 OK", length: int | None = None) -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: "
            f"{len(body) if length is None else length}\r\n\r\n").encode() + body


def keep_alive(conn: socket.socket) -> None:
    """The peer ``keep-alive``: the files, each with its Content-Length, and the connection kept open, whatever the
    request says (up to 15 s of silence): the body's end is its length, never the close."""
    def answer(path: str) -> bool:
        body = FILES.get(path.lstrip("/"))
        conn.sendall(_response(body) if body is not None else _response(b"not found\n", "404 Not Found"))
        return True
    _requests(conn, answer)


def short_body(conn: socket.socket) -> None:
    """The peer ``short-body``: the files; but for /big.bin, Content-Length: 100000, 5000 bytes, and a close (FIN)."""
    def answer(path: str) -> bool:
        if path == "/big.bin":
            conn.sendall(_response(big_file()[:5000], length=100_000))
            return False  # closed by serve_peer: a FIN in the middle of the body
        body = FILES.get(path.lstrip("/"))
        conn.sendall(_response(body) if body is not None else _response(b"not found\n", "404 Not Found"))
        return True
    _requests(conn, answer)


PEERS = {"keep-alive": keep_alive, "short-body": short_body}

TWO = [HELLO.rstrip(b"\n"), ABOUT.rstrip(b"\n")]

CHECKS = [
    ServerCheck("server-basic", "the happy path: two files on one connection, each request alone", server_basic,
                impair="frames=20ms"),
    ServerCheck("server-head", "HEAD: the head a GET would get, and no body", server_head),
    ServerCheck("server-partial-recv", "a request arrives one byte at a time: one recv() is not one request",
                server_partial_recv, impair="slice=1:2ms,dir=to-server"),
    ServerCheck("server-pipelined", "two requests in one recv(): both answered, in order", server_pipelined,
                impair="merge=100ms,dir=to-server"),
    ServerCheck("server-large-file", f"a {BIG_SIZE}-byte file: send() versus sendall()", server_large_file,
                time_limit=BIG_LIMIT),
    ServerCheck("server-client-vanishes", "a client killed mid-request or mid-response must not kill the server",
                server_client_vanishes),
    ServerCheck("server-silent-client", "a client that stops mid-request is closed after a timeout",
                server_silent_client),
    ServerCheck("server-concurrent-clients", "four clients are served while a fifth is slowly sending its request",
                server_concurrent_clients),
    ServerCheck("server-not-found", "a missing file is 404, and the server goes on", server_not_found),
    ServerCheck("server-malformed-request", "bad input: a malformed request line is 400, not a crash",
                server_malformed_request),
    ServerCheck("server-huge-header", "bad input: a request head without end is refused, not buffered for ever",
                server_huge_header),
    ServerCheck("server-path-escape", "bad input: ../, %2e%2e and absolute paths never leave ROOT",
                server_path_escape),
    # Responses are not cut into messages here (dir=to-server): frames= would send a head and its
    # body apart, which is client-partial-recv's business.
    ClientCheck("client-basic", "the happy path: two files, each request alone", ["/hello.txt", "/about.txt"],
                printed(TWO), impair="frames=20ms,dir=to-server", time_limit=LIMIT),
    ClientCheck("client-partial-recv", "a response arrives one byte at a time: one recv() is not one response",
                ["/hello.txt"], partial_judge, impair="slice=1:2ms,dir=to-client", time_limit=LIMIT),
    ClientCheck("client-large-body", f"a {BIG_SIZE}-byte body: read Content-Length bytes, however they come",
                ["/big.bin"], large_judge, time_limit=BIG_LIMIT),
    ClientCheck("client-keep-alive", "the server keeps the connection open: the body ends at Content-Length",
                ["/hello.txt", "/about.txt"], keep_alive_judge, peer="keep-alive", time_limit=LIMIT),
    ClientCheck("client-server-closes-mid-body", "the server closes before Content-Length bytes: an error, "
                "not a short file", ["/hello.txt", "/big.bin"],
                failed_clearly("the server closed the connection after 5000 of the 100000 bytes it announced",
                               "recv() == b'' before Content-Length bytes is an error", first=HELLO),
                peer="short-body", time_limit=LIMIT),
    ClientCheck("client-silent-server", "the server stops in the middle of a body: the client gives up after "
                "a timeout", ["/hello.txt", "/big.bin"],
                failed_clearly("the server sent the first file, then stopped in the middle of the second",
                               "without settimeout() a client waits for ever", first=HELLO),
                impair="blackhole=4096,dir=to-client", time_limit=LIMIT),
    ClientCheck("client-error-status", "a 404 is an error, not a file", ["/hello.txt", "/missing.txt"],
                failed_clearly("the server answered 404 Not Found for /missing.txt", "", also=b"404",
                               first=HELLO), time_limit=LIMIT),
]
