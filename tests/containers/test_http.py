"""The http exercise across real containers: our server, our client, and HTTP software nobody here wrote.

Three containers on a fresh network (testcontainers, no Compose) serve the
whole module:

    client  (sleep infinity)  --exec-->  our client, curl, http.client, peers/http_peer.py
        |                                                         (raw bytes)
        +-- server:8080    python3 -m socklab server http --demo-site --timeout 4 ...
        +-- pyserver:8000  python3 -m http.server (the standard library's)

Every bad input ends with a check that the server still serves others, and
every test ends with a look at the server log for a traceback.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest

from socklab import LABEL
from support import ServerLog, sh
from socklab.http.server import DEMO_SITE

pytestmark = pytest.mark.container

PEERS = Path(__file__).parent / "peers"
IDLE_TIMEOUT = 4
REQUEST_TIMEOUT = 2
OUR_CLIENT = "python3 -m socklab client http"
CLIENT = f"{OUR_CLIENT} --host server"
ABOUT = DEMO_SITE["about.txt"]
INDEX = DEMO_SITE["index.html"]
BLOB_SIZE = 300_000  # several 64 KiB pieces, and several recv() calls on the client side
BIG_SIZE = 24 << 20  # more than the socket buffers on both sides hold
PASSWD = "root:x:0:0"  # what /etc/passwd would show, were it ever served


class Lab(NamedTuple):
    server: object
    pyserver: object
    client: object


@pytest.fixture(scope="module")
def lab(images):
    """Our server, Python's http.server and a client container on a fresh network, removed at the end."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    labels = {LABEL: "test-http"}
    pyserver_setup = ("mkdir -p /srv/x/sub && printf 'from python\\n' > /srv/x/hello.txt"
                      f" && head -c {BLOB_SIZE} /dev/urandom > /srv/x/blob.bin"
                      " && exec python3 -u -m http.server 8000 --directory /srv/x")
    with Network(docker_network_kw={"labels": labels}) as network:
        server = (DockerContainer(images.lab)
                  .with_network(network).with_network_aliases("server")
                  .with_command("python3 -m socklab server http --root /srv/files --demo-site"
                                f" --timeout {IDLE_TIMEOUT} --request-timeout {REQUEST_TIMEOUT}")
                  .with_tmpfs_mount("/srv/files", "size=64m")
                  .with_kwargs(labels=labels, mem_limit="256m", cap_drop=["ALL"])
                  .waiting_for(LogMessageWaitStrategy("listening on").with_startup_timeout(30)))
        pyserver = (DockerContainer(images.lab)
                    .with_network(network).with_network_aliases("pyserver")
                    .with_command(["sh", "-c", pyserver_setup])
                    .with_tmpfs_mount("/srv/x", "size=16m")
                    .with_kwargs(labels=labels, mem_limit="256m", cap_drop=["ALL"])
                    .waiting_for(LogMessageWaitStrategy("Serving HTTP on").with_startup_timeout(30)))
        client = (DockerContainer(images.lab)
                  .with_network(network)
                  .with_command("sleep infinity")
                  .with_volume_mapping(str(PEERS), "/peers", "ro")
                  .with_kwargs(labels=labels, mem_limit="256m", init=True))
        with server, pyserver, client:
            code, out = sh(server, f"cd /srv/files && mkdir sub && head -c {BLOB_SIZE} /dev/urandom > blob.bin"
                                   f" && head -c {BIG_SIZE} /dev/zero > big.bin"
                                   " && echo secret > unreadable.txt && chmod 000 unreadable.txt"
                                   " && ln -s /etc link-out && ln -s /etc/passwd passwd-link && mkfifo fifo")
            assert code == 0, out
            yield Lab(server, pyserver, client)


class HttpServerLog(ServerLog):
    def connections(self) -> int:
        return len(re.findall(r" connected$", self.since_start(), re.MULTILINE))


@pytest.fixture
def server_log(lab):
    """The server's log since this test began; at teardown, a check that it holds no traceback."""
    log = HttpServerLog(lab.server)
    yield log
    log.assert_healthy()


# -- raw bytes: the peer, and a parser that is not the one under test ---------------


@dataclass
class Response:
    version: str
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes


@dataclass
class Reply:
    """What http_peer.py received, and how the connection ended."""

    data: bytes
    eof: bool
    reset: bool
    cut_off: bool

    @classmethod
    def parse(cls, output: bytes) -> Reply:
        data, marker, summary = output.rpartition(b"\n#peer ")
        assert marker, f"http_peer printed no summary: {output[-500:]!r}"
        fields = json.loads(summary)
        return cls(data, fields["eof"], fields["reset"], fields["cut_off"])

    def responses(self, *methods: str) -> list[Response]:
        """The responses in order, split by Content-Length; ``methods`` tells which answered a HEAD."""
        found, rest = [], self.data
        while rest:
            head, end, rest = rest.partition(b"\r\n\r\n")
            assert end, f"an unfinished response head after {len(found)} responses: {head[:300]!r}"
            status_line, *lines = head.decode("latin-1").split("\r\n")
            version, status, _ = status_line.split(" ", 2)
            headers = {n.strip().lower(): v.strip() for n, _, v in (line.partition(":") for line in lines)}
            method = methods[len(found)] if len(found) < len(methods) else "GET"
            size = 0 if method == "HEAD" else int(headers.get("content-length", "0"))
            found.append(Response(version, int(status), headers, rest[:size]))
            rest = rest[size:]
        return found

    def only(self) -> Response:
        (response,) = self.responses()
        return response


def peer_argv(*steps: bytes | str, read: float = 3.0) -> list[str]:
    """bytes are sent as they are; a str is peer options, e.g. "--pause 0.5" or "--close"."""
    argv = ["python3", "/peers/http_peer.py", "server", "8080"]
    for step in steps:
        if isinstance(step, bytes):
            # in pieces: one argument may not exceed 128 KiB
            argv += [word for i in range(0, len(step), 16384) for word in ("--send", step[i:i + 16384].hex())]
        else:
            argv += step.split()
    return [*argv, "--read", str(read)]


def peer(client, *steps: bytes | str, read: float = 3.0) -> Reply:
    result = client.exec(peer_argv(*steps, read=read))
    assert result.exit_code == 0, result.output.decode(errors="replace")
    return Reply.parse(result.output)


def request(target: str = "/about.txt", method: str = "GET", *headers: str, close: bool = True) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: server:8080", *headers, *(["Connection: close"] if close else [])]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def assert_still_serving(client) -> None:
    code, out = sh(client, f"timeout 5 {CLIENT} --fail /about.txt")
    assert code == 0 and ABOUT in out, out


def assert_refused(reply: Reply, status: int, detail: str) -> Response:
    """One error response, its detail in the body, then the server closed the connection."""
    response = reply.only()
    assert response.status == status, reply.data[:500]
    assert detail in response.body.decode(), response.body
    assert response.headers.get("connection") == "close" and reply.eof, reply
    return response


# -- the normal exchange --------------------------------------------------------------


def test_our_client_gets_two_paths_on_one_keep_alive_connection(lab, server_log):
    code, out = sh(lab.client, f"{CLIENT} --fail / /about.txt")
    assert code == 0, out
    assert INDEX in out and ABOUT in out
    assert "* reusing the connection to server port 8080" in out
    assert out.rstrip().endswith("* 2 requests on 1 connection")
    log = server_log.wait("closing the connection (Connection: close)")
    assert f'"GET / HTTP/1.1" 200 {len(INDEX.encode())}' in log
    assert f'"GET /about.txt HTTP/1.1" 200 {len(ABOUT.encode())}' in log
    assert server_log.connections() == 1, log


def test_head_has_the_headers_of_a_get_and_no_body(lab):
    # HEAD then GET on one connection: a HEAD answer with a body would shift
    # the GET's answer, and the split below would find garbage.
    reply = peer(lab.client, request("/about.txt", "HEAD", close=False) + request("/about.txt"))
    head, get = reply.responses("HEAD", "GET")
    assert (head.status, get.status) == (200, 200)
    assert head.body == b"" and get.body == ABOUT.encode()
    assert head.headers["content-length"] == get.headers["content-length"] == str(len(ABOUT.encode()))
    assert head.headers["content-type"] == get.headers["content-type"] == "text/plain"

    code, out = sh(lab.client, f"{CLIENT} --head --fail /about.txt")
    assert code == 0 and f"< Content-Length: {len(ABOUT.encode())}" in out and ABOUT not in out, out


def test_content_length_matches_the_served_file(lab):
    code, out = sh(lab.server, "stat -c %s /srv/files/blob.bin && sha256sum /srv/files/blob.bin")
    assert code == 0, out
    size, digest = out.split()[:2]
    assert int(size) == BLOB_SIZE
    code, out = sh(lab.client, f"{CLIENT} --fail --digest /blob.bin /index.html")
    assert code == 0, out
    assert f"< Content-Length: {size}" in out and "< Content-Type: application/octet-stream" in out
    assert f"(body: {size} bytes, sha256 {digest})" in out
    assert f"< Content-Length: {len(INDEX.encode())}" in out and "< Content-Type: text/html" in out


def test_requests_pipelined_in_one_write_are_answered_in_order(lab):
    reply = peer(lab.client, request("/about.txt", close=False) + request("/", "HEAD", close=False) + request("/"))
    about, head, index = reply.responses("GET", "HEAD", "GET")
    assert [about.body, head.body, index.body] == [ABOUT.encode(), b"", INDEX.encode()]
    assert index.headers["connection"] == "close" and reply.eof


def test_http_1_0_closes_unless_asked_to_keep_alive(lab):
    reply = peer(lab.client, b"GET /about.txt HTTP/1.0\r\n\r\n", read=IDLE_TIMEOUT - 1)
    assert reply.only().body == ABOUT.encode() and reply.only().headers["connection"] == "close" and reply.eof
    reply = peer(lab.client, b"GET /about.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                 b"GET /about.txt HTTP/1.0\r\n\r\n")
    first, second = reply.responses()
    assert first.headers["connection"] == "keep-alive" and second.headers["connection"] == "close"
    assert first.body == second.body == ABOUT.encode() and reply.eof


# -- interop with software nobody here wrote --------------------------------------------


def test_curl_gets_both_paths_on_one_connection(lab, server_log):
    code, out = sh(lab.client, "curl -sS --fail -w '\\n[%{http_code} %{num_connects} %{size_download}]\\n'"
                               " http://server:8080/ http://server:8080/about.txt")
    assert code == 0, out
    assert INDEX in out and ABOUT in out
    # num_connects is 0 for a transfer that reused the connection
    assert f"[200 1 {len(INDEX.encode())}]" in out and f"[200 0 {len(ABOUT.encode())}]" in out, out
    assert server_log.connections() == 1


def test_curl_head_and_errors(lab):
    code, out = sh(lab.client, "curl -sS -I http://server:8080/about.txt")
    assert code == 0 and out.startswith("HTTP/1.1 200 OK\r\n"), out
    assert f"Content-Length: {len(ABOUT.encode())}\r\n" in out and ABOUT not in out
    code, out = sh(lab.client, "curl -sS -o /dev/null -w '%{http_code}' http://server:8080/missing.html")
    assert (code, out) == (0, "404")
    code, out = sh(lab.client, "curl -sS -X DELETE -D - -o /dev/null http://server:8080/about.txt")
    assert code == 0 and out.startswith("HTTP/1.1 405 ") and "Allow: GET, HEAD\r\n" in out, out
    code, out = sh(lab.client, "curl -sS --path-as-is -w '[%{http_code}]' http://server:8080/../../etc/passwd")
    assert code == 0 and out.endswith("[403]") and PASSWD not in out, out


def test_python_http_client_reuses_one_connection(lab, server_log):
    script = """
import hashlib, http.client, json
conn = http.client.HTTPConnection("server", 8080, timeout=10)
seen = []
for method, path in [("GET", "/"), ("HEAD", "/about.txt"), ("GET", "/about.txt"), ("GET", "/missing.html"),
                     ("GET", "/blob.bin")]:
    conn.request(method, path)
    response = conn.getresponse()
    body = response.read()
    seen.append([response.status, response.getheader("Content-Length"), len(body),
                 hashlib.sha256(body).hexdigest(), conn.sock.getsockname()[1]])
conn.close()
print(json.dumps(seen))
"""
    result = lab.client.exec(["python3", "-c", script])
    assert result.exit_code == 0, result.output.decode()
    seen = json.loads(result.output)
    assert [row[0] for row in seen] == [200, 200, 200, 404, 200]
    assert [row[2] for row in seen] == [len(INDEX.encode()), 0, len(ABOUT.encode()), int(seen[3][1]), BLOB_SIZE]
    assert seen[1][1] == seen[2][1] == str(len(ABOUT.encode()))  # HEAD: the GET's length, no body
    assert len({row[4] for row in seen}) == 1  # one local port: one connection
    blob_digest = sh(lab.server, "sha256sum /srv/files/blob.bin")[1].split()[0]
    assert seen[4][3] == blob_digest
    server_log.wait('"GET /blob.bin HTTP/1.1" 200')
    assert server_log.connections() == 1


def test_our_client_against_python_http_server(lab):
    # http.server answers HTTP/1.0 and closes after each response: our client
    # must notice and open a new connection for the next request.
    code, out = sh(lab.client, f"{OUR_CLIENT} --host pyserver --port 8000 --fail /hello.txt /")
    assert code == 0, out
    assert "< HTTP/1.0 200 OK" in out and "from python\n" in out and "hello.txt" in out
    assert out.rstrip().endswith("* 2 requests on 2 connections")

    digest = sh(lab.pyserver, "sha256sum /srv/x/blob.bin")[1].split()[0]
    code, out = sh(lab.client, f"{OUR_CLIENT} --digest --fail http://pyserver:8000/blob.bin")
    assert code == 0 and f"(body: {BLOB_SIZE} bytes, sha256 {digest})" in out, out

    code, out = sh(lab.client, f"{OUR_CLIENT} --host pyserver --port 8000 --head --fail /hello.txt")
    assert code == 0 and "< Content-Length: 12" in out and "from python" not in out, out
    code, out = sh(lab.client, f"{OUR_CLIENT} --host pyserver --port 8000 --expect 404 /nope.txt")
    assert code == 0 and "< HTTP/1.0 404 File not found" in out, out


# -- concurrency ---------------------------------------------------------------------


def test_an_idle_keep_alive_connection_does_not_hold_up_another_client(lab, server_log):
    # The holder keeps its connection open and silent until the server's idle
    # timeout; a server serving one client at a time would keep the second
    # client waiting past its 2 s limit.
    holder = shlex.join(peer_argv(request(close=False), read=IDLE_TIMEOUT + 3))
    code, out = sh(lab.client, f"{holder} > /tmp/holder.out & sleep 0.5;"
                               f" timeout 2 {CLIENT} --fail /about.txt; s=$?; wait; exit $s")
    assert code == 0 and ABOUT in out, out
    reply = Reply.parse(lab.client.exec(["cat", "/tmp/holder.out"]).output)
    assert reply.only().status == 200 and reply.eof  # then the idle timeout closed it
    log = server_log.wait(f"sent nothing for {IDLE_TIMEOUT} s")
    # The second client came, was served and left while the holder was still connected.
    served = log.index("closing the connection (Connection: close)")
    assert log.count('"GET /about.txt HTTP/1.1" 200') == 2 and served < log.index("sent nothing"), log


def test_several_clients_at_once_all_get_200(lab, server_log):
    many = 10
    code, out = sh(lab.client, f"rm -f /tmp/many.*; pids=; for i in $(seq {many}); do"
                               f" timeout 10 {CLIENT} --fail --digest / /about.txt /blob.bin > /tmp/many.$i 2>&1 &"
                               " pids=\"$pids $!\"; done; failed=0;"
                               " for p in $pids; do wait $p || failed=$((failed+1)); done;"
                               " cat /tmp/many.*; echo failed=$failed")
    assert code == 0 and out.rstrip().endswith("failed=0"), out
    assert out.count("* 3 requests on 1 connection") == many
    assert out.count(f"(body: {BLOB_SIZE} bytes") == many
    assert out.count("< HTTP/1.1 200 OK") == 3 * many
    server_log.wait('"GET /blob.bin HTTP/1.1" 200')
    assert server_log.connections() == many


# -- bad input: a clear error, and the server still serving ------------------------------


GARBAGE = {
    "not a request line": (b"garbage\r\n\r\n", "malformed request line"),
    "two words": (b"GET /\r\n\r\n", "malformed request line"),
    "bad version": (b"GET / HTTX/1.1\r\nHost: server\r\n\r\n", "is not an HTTP version"),
    "no Host": (b"GET / HTTP/1.1\r\n\r\n", "exactly one Host header"),
    "two Hosts": (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "exactly one Host header"),
    "header without colon": (b"GET / HTTP/1.1\r\nHost: server\r\nno colon here\r\n\r\n", "malformed header line"),
    "folded header": (b"GET / HTTP/1.1\r\nHost: server\r\nX-A: 1\r\n  folded\r\n\r\n", "obsolete line folding"),
    "two Content-Lengths": (b"GET / HTTP/1.1\r\nHost: server\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                            "bad Content-Length"),
    "negative Content-Length": (b"GET / HTTP/1.1\r\nHost: server\r\nContent-Length: -1\r\n\r\n", "bad Content-Length"),
    "control byte in target": (b"GET /a\x01b HTTP/1.1\r\nHost: server\r\n\r\n", "printable ASCII"),
    "binary junk": (bytes(range(1, 256)) + b"\r\n\r\n", "malformed request line"),
}


@pytest.mark.parametrize("case", GARBAGE)
def test_garbage_gets_400_and_the_connection_closed(lab, server_log, case):
    data, detail = GARBAGE[case]
    assert_refused(peer(lab.client, data), 400, detail)
    server_log.wait("refused: 400 Bad Request")
    assert_still_serving(lab.client)


def test_a_target_that_is_not_a_path_gets_400_and_the_connection_goes_on(lab):
    reply = peer(lab.client, request("about.txt", close=False) + request("/about.txt"))
    bad, good = reply.responses()
    assert bad.status == 400 and b"must be a path starting with /" in bad.body
    assert good.status == 200 and good.body == ABOUT.encode()


@pytest.mark.parametrize("method, body", [("DELETE", b""), ("POST", b"name=value"), ("PUT", b"x" * 5000),
                                          ("BREW", b"")])
def test_other_methods_get_405_with_allow_and_the_connection_goes_on(lab, method, body):
    # The body is read and dropped: the next request on the connection must
    # start right after it.
    first = request("/about.txt", method, f"Content-Length: {len(body)}", close=False) + body
    reply = peer(lab.client, first + request("/about.txt"))
    refused, served = reply.responses()
    assert refused.status == 405 and refused.headers["allow"] == "GET, HEAD"
    assert f"{method} is not served here".encode() in refused.body
    assert served.status == 200 and served.body == ABOUT.encode()
    assert_still_serving(lab.client)


def test_our_client_shows_405_and_allow(lab):
    code, out = sh(lab.client, f"{CLIENT} -X DELETE --expect 405 /about.txt")
    assert code == 0 and "< HTTP/1.1 405 Method Not Allowed" in out and "< Allow: GET, HEAD" in out, out


def test_an_overlong_request_line_gets_414(lab, server_log):
    long_target = "/" + "a" * 9000
    assert_refused(peer(lab.client, request(long_target)), 414, "the first line is over 8192 bytes")
    # Refused as soon as the line is too long, not when it ends: without its
    # CRLF it would otherwise wait for the request timeout and answer 408.
    assert_refused(peer(lab.client, f"GET {long_target}".encode()), 414, "the first line is over 8192 bytes")
    assert "refused: 408" not in server_log.since_start()
    # Under the limit the line is read, and the name is what is refused.
    assert peer(lab.client, request("/" + "a" * 8000)).only().status == 403
    assert_still_serving(lab.client)


HEADS_TOO_LARGE = {
    "101 headers": ([f"X-H{i}: {i}" for i in range(100)], "more than 100 header lines"),
    "a 9000-byte header": ([f"X-Big: {'b' * 9000}"], "a header line is over 8192 bytes"),
    "a 70 kB head": ([f"X-H{i}: {'h' * 7000}" for i in range(10)], "the head is over 65536 bytes"),
}


def test_a_flood_of_empty_lines_gets_431(lab):
    # Empty lines before a request line are allowed (RFC 9112 2.2), but not without end.
    assert_refused(peer(lab.client, b"\r\n" * 40_000), 431, "the head is over 65536 bytes")
    assert_still_serving(lab.client)


@pytest.mark.parametrize("case", HEADS_TOO_LARGE)
def test_too_many_or_too_large_headers_get_431(lab, case):
    headers, detail = HEADS_TOO_LARGE[case]
    assert_refused(peer(lab.client, request("/about.txt", "GET", *headers)), 431, detail)
    assert_still_serving(lab.client)


def test_a_hundred_headers_are_still_fine(lab):
    headers = [f"X-H{i}: {i}" for i in range(98)]  # + Host + Connection
    assert peer(lab.client, request("/about.txt", "GET", *headers)).only().body == ABOUT.encode()


@pytest.mark.parametrize("data", [
    b"GET /about.txt HTTP/2.0\r\nHost: server\r\n\r\n",
    b"GET /about.txt HTTP/3.0\r\nHost: server\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",  # the HTTP/2 connection preface
], ids=["HTTP/2.0", "HTTP/3.0", "h2-preface"])
def test_other_http_versions_get_505(lab, data):
    assert_refused(peer(lab.client, data), 505, "is not supported, only HTTP/1.x")
    assert_still_serving(lab.client)


@pytest.mark.parametrize("sent", [100_000, 0], ids=["body-sent", "only-announced"])
def test_a_body_over_the_limit_gets_413(lab, sent):
    # With the body sent, the answer must survive the unread bytes behind it
    # (the server drains them before closing, so no reset destroys it).
    reply = peer(lab.client, request("/about.txt", "GET", "Content-Length: 100000"), f"--zeros {sent}")
    assert_refused(reply, 413, "a body of 100000 bytes is over the 65536-byte limit")
    assert not reply.reset
    assert_still_serving(lab.client)


def test_a_chunked_request_body_gets_501(lab):
    reply = peer(lab.client, request("/about.txt", "POST", "Transfer-Encoding: chunked") + b"5\r\nhello\r\n0\r\n\r\n")
    assert_refused(reply, 501, "Transfer-Encoding")
    assert_still_serving(lab.client)


def test_missing_files_get_404_and_the_connection_goes_on(lab):
    reply = peer(lab.client, request("/missing.html", "HEAD", close=False) + request("/missing.html", close=False)
                 + request("/sub/", close=False) + request("/about.txt"))
    head, get, folder, about = reply.responses("HEAD", "GET", "GET", "GET")
    assert [r.status for r in (head, get, folder, about)] == [404, 404, 404, 200]
    assert head.body == b"" and head.headers["content-length"] == get.headers["content-length"]
    assert b"no such file: /missing.html" in get.body and b"no such file: /sub/index.html" in folder.body
    assert about.body == ABOUT.encode()

    code, out = sh(lab.client, f"{CLIENT} /missing.html /about.txt")
    assert code == 0 and "< HTTP/1.1 404 Not Found" in out and ABOUT in out, out
    assert out.rstrip().endswith("* 2 requests on 1 connection")


def test_an_unreadable_file_gets_403(lab):
    # chmod 000, and the server runs without CAP_DAC_OVERRIDE: even root cannot open it.
    code, out = sh(lab.client, f"{CLIENT} /unreadable.txt /about.txt")
    assert code == 0 and "< HTTP/1.1 403 Forbidden" in out and "not readable: /unreadable.txt" in out, out
    assert "secret" not in out and ABOUT in out
    assert out.rstrip().endswith("* 2 requests on 1 connection")


def test_a_fifo_is_not_served_and_does_not_block(lab):
    code, out = sh(lab.client, f"timeout 5 {CLIENT} --expect 404 /fifo")
    assert code == 0 and "not a regular file: /fifo" in out, out
    assert_still_serving(lab.client)


ESCAPES = {
    "dot-dot": "/../../etc/passwd",
    "dot-dot inside": "/sub/../../etc/passwd",
    "percent-encoded dots": "/%2e%2e/%2e%2e/etc/passwd",
    "percent-encoded slashes": "/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    "double slash": "//etc/passwd",
    "encoded slash": "/%2fetc/passwd",
    "absolute-form": "http://server:8080/../../etc/passwd",
    "symlink to a folder outside": "/link-out/passwd",
    "symlink to a file outside": "/passwd-link",
    "NUL": "/about.txt%00/../../../etc/passwd",
    "NUL only": "/%00",
}


@pytest.mark.parametrize("case", ESCAPES)
def test_paths_that_leave_the_root_are_forbidden(lab, server_log, case):
    reply = peer(lab.client, request(ESCAPES[case]))
    assert PASSWD not in reply.data.decode(errors="replace")
    assert reply.only().status == 403, reply.data
    server_log.wait(f'"GET {ESCAPES[case]} HTTP/1.1" 403 0')
    assert_still_serving(lab.client)


def test_a_backslash_is_just_a_character_in_a_name(lab):
    reply = peer(lab.client, request("/..%5c..%5cetc%5cpasswd"))
    assert reply.only().status == 404 and PASSWD not in reply.data.decode(errors="replace")


@pytest.mark.parametrize("steps, arrived", [
    ((b"GET /about.txt HTTP/1.1\r\nHo", "--pause 0.3", "--close"), 27),
    ((b"GET /about.txt HTTP/1.1\r\nHo", "--pause 0.3", "--reset"), 27),
    ((request("/about.txt", "GET", "Content-Length: 100") + b"0123456789", "--pause 0.3", "--close"), 10),
], ids=["mid-head-fin", "mid-head-rst", "mid-body-fin"])
def test_half_a_request_then_gone(lab, server_log, steps, arrived):
    reply = peer(lab.client, *steps)
    assert reply.data == b""
    server_log.wait(f"vanished in the middle of a message: {arrived} bytes of a request had arrived")
    assert_still_serving(lab.client)


def test_idle_clients_are_closed_after_the_timeout(lab, server_log):
    # Both at once, to wait out the timeout once: one never sends a byte, the
    # other goes silent after a request on a keep-alive connection.
    silent = shlex.join(peer_argv(read=IDLE_TIMEOUT + 3))
    after_one = shlex.join(peer_argv(request(close=False), read=IDLE_TIMEOUT + 3))
    code, out = sh(lab.client, f"{silent} > /tmp/silent.out & {after_one} > /tmp/after-one.out & wait")
    assert code == 0, out
    silent = Reply.parse(lab.client.exec(["cat", "/tmp/silent.out"]).output)
    after_one = Reply.parse(lab.client.exec(["cat", "/tmp/after-one.out"]).output)
    assert silent.data == b"" and silent.eof and not silent.reset
    assert after_one.only().body == ABOUT.encode() and after_one.eof and not after_one.reset
    server_log.wait(f"sent nothing for {IDLE_TIMEOUT} s: closing its connection", times=2)
    assert_still_serving(lab.client)


def test_a_client_that_stops_reading_is_dropped_and_does_not_hold_up_others(lab, server_log):
    # It asks for a file far larger than the socket buffers, then reads nothing:
    # the server's send blocks until the idle timeout, then it gives up.
    stalled = f"""
import socket, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("server", 8080))
s.sendall(b"GET /big.bin HTTP/1.1\\r\\nHost: server\\r\\nConnection: close\\r\\n\\r\\n")
time.sleep({IDLE_TIMEOUT + 1.5})
s.settimeout(5)
received = 0
try:
    while data := s.recv(1 << 20):
        received += len(data)
except OSError:
    pass
print(received)
"""
    code, out = sh(lab.client, f"python3 -c {shlex.quote(stalled)} > /tmp/stalled.out & sleep 0.5;"
                               f" timeout 2 {CLIENT} --fail /about.txt; s=$?; wait; exit $s")
    assert code == 0 and ABOUT in out, out
    received = int(lab.client.exec(["cat", "/tmp/stalled.out"]).output)
    assert 0 < received < BIG_SIZE  # cut short: the close is all the client learns
    server_log.wait(f"read nothing of our replies for {IDLE_TIMEOUT} s (")  # not "sent nothing": it stopped reading
    assert_still_serving(lab.client)


def test_a_slow_client_is_cut_off_and_does_not_hold_up_others(lab, server_log):
    # Slowloris: a header line every 0.5 s keeps the idle timeout from ever
    # firing; the whole-head deadline (--request-timeout) is what stops it.
    trickle = [step for i in range(20) for step in (f"X-Slow-{i}: 1\r\n".encode(), "--pause 0.5")]
    slow = shlex.join(peer_argv(b"GET /about.txt HTTP/1.1\r\nHost: server\r\n", *trickle, read=3))
    code, out = sh(lab.client, f"{slow} > /tmp/slow.out & sleep 0.5; timeout 2 {CLIENT} --fail /about.txt;"
                               " s=$?; wait; exit $s")
    assert code == 0 and ABOUT in out, out
    reply = Reply.parse(lab.client.exec(["cat", "/tmp/slow.out"]).output)
    assert_refused(reply, 408, f"request not complete after {REQUEST_TIMEOUT} s")
    assert reply.cut_off  # the server answered before the peer had finished trickling
    server_log.wait(f"refused: 408 Request Timeout: request not complete after {REQUEST_TIMEOUT} s")
    assert_still_serving(lab.client)
