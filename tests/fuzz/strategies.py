"""Hypothesis strategies for each exercise's wire format, and the mutations on top.

Each exercise's strategy first builds *valid* frames with the exercise's own
protocol module (p.encode, p.encode_line, p.hello...), strings them into a
conversation -- or several, interleaved -- and then maybe mutates the bytes:

    truncate   cut the stream short
    flip       one byte replaced
    insert     a few random bytes added
    delete     a slice removed
    duplicate  a slice repeated
    oversize   a run of bytes at or over the exercise's limits

Finally the stream is cut into the chunks the client sends one by one, so the
server's recv sees frames split anywhere. UDP mutates each datagram instead.
"""

from __future__ import annotations

import hashlib
import struct

from hypothesis import strategies as st

from harness import ENDS, MUTATIONS, TEXT_ALPHABET, Input, mutate, split
from socklab.echo import protocol as echo
from socklab.framing import LocalProtocolError
from socklab.ftp import protocol as ftp
from socklab.http import protocol as http
from socklab.shell import protocol as shell
from socklab.udp import protocol as udp

BIG = 1 << 20


@st.composite
def mutated(draw, data: bytes, oversize: list[bytes]) -> bytes:
    """``data`` with up to three of harness.MUTATIONS applied, hypothesis drawing where and what."""
    for op in draw(st.lists(st.sampled_from(MUTATIONS), max_size=3)):
        extra = draw(st.sampled_from(oversize) if op == "oversize" else st.binary(min_size=1, max_size=8))
        data = mutate(data, op, draw(st.integers(0, len(data))), draw(st.integers(1, 64)), extra)
    return data


@st.composite
def stream_input(draw, conversations: st.SearchStrategy[list[bytes]], oversize: list[bytes]) -> Input:
    """A TCP input: frames of one or more conversations, maybe interleaved, maybe mutated, then chunked."""
    frames = [f for conversation in draw(st.lists(conversations, min_size=1, max_size=3)) for f in conversation]
    if len(frames) > 1 and draw(st.integers(0, 4)) == 0:
        frames = draw(st.permutations(frames))  # frames of several conversations interleaved
    data = draw(mutated(b"".join(frames), oversize))
    if draw(st.integers(0, 7)) == 0:
        cuts = list(range(1, min(len(data), 48)))  # the start byte by byte
    else:
        cuts = draw(st.lists(st.integers(0, 1 << 30), max_size=6))
    return Input(split(data, cuts), draw(st.sampled_from(ENDS)), "hypothesis")


def _runs(*sizes: int, byte: bytes = b"a") -> list[bytes]:
    return [byte * n for n in sizes]


#: Names and words: ASCII, separators, and some characters that are more than one byte in UTF-8.
TEXT = st.text(st.sampled_from("aZ09 -_./%?#~\\:\t\x00\x7f\u00e9\u2713\u202e\uff0e\u0390"), max_size=16)

# --- echo: lines -------------------------------------------------------------------

ECHO_LINE = st.one_of(
    st.binary(max_size=32).map(lambda b: b.replace(b"\n", b"")),
    TEXT.map(lambda t: t.replace("\n", "").encode()),
    st.sampled_from([b"", b"hello", b"\r", "h\u00e9llo w\u00f6rld".encode(), "\u0390".encode() * 8,
                     b"ERROR line-too-long: not really", b"\xff\xfe\xc3", "\u0390".encode() * (echo.MAX_LINE // 2)]),
)
ECHO_OVERSIZE = _runs(echo.MAX_LINE - 1, echo.MAX_LINE, echo.MAX_LINE + 1, 2 * echo.MAX_LINE, BIG)
ECHO = stream_input(st.lists(ECHO_LINE.map(echo.encode_line), max_size=8), ECHO_OVERSIZE)
ECHO_PREFIXES = [echo.encode_line(b"hello"), b"x" * echo.MAX_LINE]

# --- ftp: framed commands, file headers, bodies, digests -----------------------------

FTP_NAMES = st.one_of(
    st.sampled_from(["a.txt", "sub/c.txt", "sub", "", ".", "missing", "new.txt", "sub/new.txt", "../secret",
                     "escape/canary.txt", "canary-link", "/etc/passwd", "a" * 300, "a.txt/x", "..", "x\ny"]),
    TEXT,
)


def _command(verb: str, argument: str = "") -> bytes:
    return ftp.encode(ftp.Command(verb, argument))


def _put(name: str, body: bytes, algorithm: str, size_lie: int | None, good_digest: bool) -> list[bytes]:
    digest = ftp.new_checksum(algorithm)
    digest.update(body)
    value = digest.digest() if good_digest else hashlib.sha256(b"wrong").digest()
    size = len(body) if size_lie is None else size_lie
    return [_command("put", name), ftp.encode(ftp.FileHeader(size, algorithm)), body, ftp.encode(ftp.Digest(value))]


FTP_CONVERSATION = st.one_of(
    st.tuples(st.sampled_from(ftp.VERBS + ("GET", "stor", "", "rm")), FTP_NAMES).map(lambda c: [_command(*c)]),
    st.builds(_put, st.sampled_from(["new.txt", "sub/new.txt", "up.bin"]), st.binary(max_size=64),
              st.sampled_from(sorted(ftp.CHECKSUMS)), st.one_of(st.none(), st.sampled_from([0, 1, 2**63, 2**64 - 1])),
              st.booleans()),
    st.sampled_from([
        [_command("checksum", "md5")], [_command("checksum", "sha1")], [_command("quit")],
        [ftp.encode(ftp.Ok("ready"))], [ftp.encode(ftp.Error("bad-frame", "x"))], [ftp.encode(ftp.Digest(b"\0" * 32))],
        [ftp.encode(ftp.FileHeader(2**64 - 1))], [b"F" + struct.pack("!I", 3) + b"abc"],
        [ftp.HEADER.pack(b"C", ftp.MAX_PAYLOAD + 1)], [ftp.HEADER.pack(b"C", 2**32 - 1)],
        [ftp.HEADER.pack(b"X", 0)], [ftp.HEADER.pack(b"C", 2) + b"\xff\xfe"],
        [_command("get", "a" * (ftp.MAX_PAYLOAD - 4))],
    ]),
)
FTP_OVERSIZE = [ftp.HEADER.pack(b"C", ftp.MAX_PAYLOAD + 1), ftp.HEADER.pack(b"D", 2**32 - 1),
                *_runs(ftp.MAX_PAYLOAD, ftp.MAX_PAYLOAD + 1, BIG, byte=b"\0")]
FTP = stream_input(st.lists(FTP_CONVERSATION, min_size=1, max_size=4).map(lambda cs: [f for c in cs for f in c]),
                   FTP_OVERSIZE)
FTP_PREFIXES = [_command("ls", ""), _command("put", "new.txt"), b"".join(_put("new.txt", b"", "sha256", 2**20, True)[:2])]

# --- shell: lines, with a framing hello and acks --------------------------------------

#: Commands that end fast and touch nothing: the server runs them as nobody,
#: in a scratch folder, with a short time limit, but fuzzing need not test that.
SHELL_COMMANDS = ["true", "echo hi", "printf 7", "exit 3", "echo err >&2", "head -c 70000 /dev/zero", "sleep 5",
                  "cat", "echo $HOME", "printf 'a\\nb'", "seq 1 50", "kill -9 $$"]
#: Shell syntax without command names: errors, not actions.
SHELL_NOISE = st.text(st.sampled_from(" ;|&$(){}<>'\"\\*?#~=%!-0123456789xyz\t"), min_size=1, max_size=12)


def _command_line(text: str) -> bytes:
    try:
        return shell.encode_command(text)
    except LocalProtocolError:
        return text.encode() + b"\n"  # what a well-behaved client refuses to send: empty, CR...


SHELL_LINE = st.one_of(
    st.sampled_from(SHELL_COMMANDS).map(_command_line),
    SHELL_NOISE.map(_command_line),
    st.sampled_from([shell.ACK, b"ack\r\n", b"\n", b"\r\n", b"\xff\xfe\n", b"echo a\0b\n", b"framing length\n",
                     b"echo " + b"a" * shell.MAX_LINE + b"\n"]),
)
SHELL_HELLO = st.one_of(st.sampled_from(shell.FRAMINGS).map(shell.hello),
                        st.sampled_from([b"", b"", b"framing bogus\n", b"framing\n", b"framing \xff\n"]))
SHELL_OVERSIZE = _runs(shell.MAX_LINE - 1, shell.MAX_LINE, shell.MAX_LINE + 1, BIG, byte=b"e")
SHELL = stream_input(st.tuples(SHELL_HELLO, st.lists(SHELL_LINE, max_size=3)).map(lambda hl: [hl[0], *hl[1]]),
                     SHELL_OVERSIZE)
#: Raw random text for the shell, with a line feed one byte in a hundred: each
#: line that is clean UTF-8 is run, and a few runs per input are enough.
SHELL_ALPHABET = TEXT_ALPHABET.replace(b"\n", b"") * 3 + b"\n"
SHELL_PREFIXES = [shell.hello("ack") + _command_line("true"), shell.hello("length"), shell.hello("naive")]

# --- udp: datagrams ---------------------------------------------------------------------

PING = st.builds(lambda seq, ns, pad: udp.encode(udp.Ping(seq, ns, pad)), st.integers(0, udp.MAX_SEQUENCE),
                 st.integers(0, 2**64 - 1), st.one_of(st.integers(0, 64), st.sampled_from(
                     [1472 - 16, 1473 - 16, udp.MAX_PAYLOAD_IPV4 - 16, udp.MAX_PAYLOAD_IPV4 - 15])))
DATAGRAM = st.one_of(PING, st.binary(max_size=64), st.sampled_from([b"", udp.MAGIC, b"PONG" + b"\0" * 12]))
UDP_OVERSIZE = _runs(udp.MAX_PAYLOAD_IPV4 - 1, udp.MAX_PAYLOAD_IPV4, udp.MAX_PAYLOAD_IPV4 + 1, byte=b"u")


@st.composite
def _udp_input(draw) -> Input:
    datagrams = [draw(mutated(d, UDP_OVERSIZE)) for d in draw(st.lists(DATAGRAM, min_size=1, max_size=6))]
    return Input(datagrams, "half", "hypothesis")


UDP = _udp_input()

# --- http: requests, pipelined ----------------------------------------------------------

HTTP_TARGETS = st.one_of(
    st.sampled_from(["/", "/index.html", "/about.txt", "/sub/", "/sub", "/missing", "*", "http://h/index.html",
                     "HTTP://h", "/%2e%2e/secret", "/escape/canary.txt", "/a?b#c", "/%ff", "//etc/passwd",
                     "/" + "a" * 300, "/%00", "x"]),
    TEXT.map(lambda t: "/" + t),
)
HTTP_HEADER = st.one_of(
    st.sampled_from([("Connection", "close"), ("Connection", "keep-alive"), ("Content-Length", "0"),
                     ("Content-Length", "5, 6"), ("Content-Length", "-1"), ("Content-Length", "99999999999999999999"),
                     ("Content-Length", "100000"), ("Transfer-Encoding", "chunked"), ("Host", "second"),
                     ("X-Long", "v" * (http.MAX_HEADER_LINE - 8)), ("Expect", "100-continue")]),
    st.tuples(st.sampled_from(["Accept", "X-Fuzz", "Range", "If-None-Match", "Cookie", "a"]), TEXT),
)
RAW_HEADER_LINES = st.sampled_from([b" folded", b"No-Colon", b"Name : v", b"\x00: x", b"X: a\x01b", b":", b""])


def _request(method: str, target: str, version: str, host: bool, headers: list, raw: list[bytes], body: bytes,
             crlf: bool, many: int) -> bytes:
    headers = [("Host", "fuzz")] * host + headers + [(f"X-{i}", "v") for i in range(many)]
    if body:
        headers.append(("Content-Length", str(len(body))))
    try:
        data = http.encode(http.Request(method, target, http.Headers(headers), version, body))
    except (LocalProtocolError, UnicodeEncodeError):  # what our client refuses to send: build it by hand
        lines = [f"{method} {target} {version}".encode("utf-8", "replace")]
        lines += [f"{n}: {v}".encode("utf-8", "replace") for n, v in headers]
        data = b"\r\n".join(lines) + b"\r\n\r\n" + body
    if raw:
        head, _, rest = data.partition(b"\r\n")
        data = head + b"\r\n" + b"".join(line + b"\r\n" for line in raw) + rest
    return data if crlf else data.replace(b"\r\n", b"\n")


HTTP_REQUEST = st.builds(
    _request,
    st.sampled_from(["GET", "GET", "HEAD", "POST", "PUT", "OPTIONS", "get", "G(T", ""]),
    HTTP_TARGETS,
    st.sampled_from(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.9", "HTTP/1", "http/1.1", ""]),
    st.booleans(),
    st.lists(HTTP_HEADER, max_size=4),
    st.lists(RAW_HEADER_LINES, max_size=1),
    st.binary(max_size=16),
    st.booleans(),
    st.sampled_from([0, 0, 0, 0, 0, 0, http.MAX_HEADERS - 2, http.MAX_HEADERS + 1]),
)
HTTP_OVERSIZE = [*_runs(http.MAX_REQUEST_LINE + 1, http.MAX_HEAD + 1, BIG, byte=b"a"),
                 b"X: " + b"v" * http.MAX_HEADER_LINE + b"\r\n", b"\r\n" * 5000]
HTTP = stream_input(st.lists(HTTP_REQUEST, min_size=1, max_size=2), HTTP_OVERSIZE)
HTTP_PREFIXES = [b"GET /index.html HTTP/1.1\r\nHost: fuzz\r\n\r\n", b"GET / HTTP/1.1\r\n", b"POST / HTTP/1.1\r\nHost: h\r\n"]
