"""The udp exercise across real containers: two servers and a client on their own network.

One plain echo server ("server", port 9999), one that drops 30% of each
client's datagrams with a fixed seed ("lossy", port 9998), and a client
container serve the whole module (testcontainers, no Compose). Clients run in
the client container with `exec`: our client, nc and socat, which nobody here
wrote, and a small raw peer (PEER below) that sends chosen datagrams and
reports what came back. Every bad input ends with a check that the server
still serves others, and no test may leave a traceback in a server's log.

Nothing here asserts how long anything took: a ping's timeout only decides
when the client gives up waiting, and a late reply still counts as received.
"""

from __future__ import annotations

import json
import random
import re
import time

import pytest

from socklab import LABEL
from support import ServerLog, sh
from socklab.udp import protocol as p

pytestmark = pytest.mark.container

PORT, LOSSY_PORT = 9999, 9998
DROP, SEED = 0.3, 50
PING_TIMEOUT = 0.3  # only reached by the pings the lossy server drops
CLIENT = "python3 -m socklab client udp"
ECHO = f"{CLIENT} echo --host server --port {PORT}"
PING = f"{CLIENT} ping --host lossy --port {LOSSY_PORT} --timeout {PING_TIMEOUT}"

# The raw peer: sends the datagrams of a JSON spec from one socket (or each
# from a socket of its own, bound from first_port on, awaiting its echo),
# reads replies until `quiet` seconds pass without one, and prints what it
# sent and received as [size, sha256] pairs.
PEER = r"""
import hashlib, json, socket, sys, time
spec = json.loads(sys.argv[1])
server = (socket.gethostbyname(spec["host"]), spec["port"])
def payload(item):
    if isinstance(item, str):
        return bytes.fromhex(item)
    return bytes(i % 251 for i in range(item))
datagrams = [payload(item) for item in spec.get("send", [])]
datagrams += [b"burst %06d" % i for i in range(spec.get("burst", 0))]
digest = lambda d: [len(d), hashlib.sha256(d).hexdigest()]
report = {"sent": [digest(d) for d in datagrams], "received": [], "foreign": 0}
if spec.get("first_port"):  # each from a socket of its own, on a port of its own
    for n, d in enumerate(datagrams):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("", spec["first_port"] + n))
            s.sendto(d, server)
            s.settimeout(spec.get("quiet", 0.5))
            try:  # one at a time, so that none overflows the server's buffer
                report["received"].append(digest(s.recvfrom(65536)[0]))
            except socket.timeout:
                pass
    print(json.dumps(report)); sys.exit(0)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for d in datagrams:
    s.sendto(d, server)
if spec.get("vanish"):  # gone before the echoes come back: they meet a closed port
    s.close(); print(json.dumps(report)); sys.exit(0)
s.settimeout(spec.get("quiet", 0.5))
deadline = time.monotonic() + spec.get("max_wait", 10)
while time.monotonic() < deadline:
    try:
        data, sender = s.recvfrom(65536)
    except socket.timeout:
        break
    if sender[:2] != server:
        report["foreign"] += 1
    else:
        report["received"].append(digest(data))
print(json.dumps(report))
"""


def peer(client, host: str = "server", port: int = PORT, **spec) -> dict:
    """Run the raw peer in the client container; its report."""
    spec.update(host=host, port=port)
    code, out = client.exec(["timeout", "30", "python3", "-c", PEER, json.dumps(spec)])
    text = out.decode(errors="replace")
    assert code == 0, text
    return json.loads(text.splitlines()[-1])


def drop_schedule(count: int) -> list[int]:
    """The datagrams (0-based) a fresh client of the lossy server loses: server.py's model."""
    stream = random.Random(SEED)
    return [n for n in range(count) if stream.random() < DROP]


def snmp(container, group: str, field: str) -> int:
    """A counter of the container's network namespace, from /proc/net/snmp."""
    code, out = sh(container, "cat /proc/net/snmp")
    assert code == 0, out
    names, values = [line.split()[1:] for line in out.splitlines() if line.startswith(group + ":")]
    return int(dict(zip(names, values))[field])


@pytest.fixture(scope="module")
def lab(images):
    """(server, lossy, client) containers on a fresh network, removed at the end."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    labels = {LABEL: "test-udp"}
    confined = dict(labels=labels, mem_limit="128m", pids_limit=32, cap_drop=["ALL"],
                    security_opt=["no-new-privileges:true"])

    def udp_server(network, alias: str, args: str):
        return (DockerContainer(images.lab)
                .with_network(network).with_network_aliases(alias)
                .with_command(f"python3 -m socklab server udp {args}")
                .with_kwargs(**confined)
                .waiting_for(LogMessageWaitStrategy("listening on").with_startup_timeout(30)))

    with Network(docker_network_kw={"labels": labels}) as network:
        server = udp_server(network, "server", f"--port {PORT}")
        lossy = udp_server(network, "lossy", f"--port {LOSSY_PORT} --drop {DROP} --seed {SEED}")
        client = (DockerContainer(images.lab)
                  .with_network(network)
                  .with_command("sleep infinity")
                  .with_tmpfs_mount("/data", "size=16m")
                  .with_kwargs(labels=labels, init=True, mem_limit="256m", pids_limit=256))
        with server, lossy, client:
            yield server, lossy, client


class Log(ServerLog):
    """A udp server's log since the test began."""

    def dropped(self) -> dict[str, list[int]]:
        """The ping sequence numbers the server logged as DROPPED, by client address."""
        found: dict[str, list[int]] = {}
        for peer_addr, seq in re.findall(r"(\S+) ping seq=(\d+), \d+ bytes: DROPPED", self.since_start()):
            found.setdefault(peer_addr, []).append(int(seq))
        return found


@pytest.fixture
def logs(lab):
    """(server log, lossy server log), each from the start of this test."""
    server, lossy, _ = lab
    return Log(server), Log(lossy)


@pytest.fixture(autouse=True)
def no_server_errors(logs):
    """After each test: both servers still up, and nothing reached their handle_error()."""
    yield
    for log in logs:
        log.assert_healthy()


def assert_still_serving(client, server_log: Log | None = None) -> None:
    code, out = sh(client, f"{ECHO} --timeout 1 still-here")
    assert code == 0, out
    assert re.search(r"reply from \S+: 10 bytes: b'still-here', rtt", out), out
    if server_log is not None:
        server_log.wait("10 bytes: b'still-here': echoed")


def ping_summary(out: str) -> dict:
    """The pinger's summary, parsed; fails if a line is missing."""
    counts = re.search(r"^(\d+) sent, (\d+) received, (\d+) lost \(([\d.]+)% loss\), "
                       r"(\d+) duplicates, (\d+) out of order$", out, re.M)
    rtt = re.search(r"^rtt min/avg/max/stddev = ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms$", out, re.M)
    assert counts and rtt and re.search(r"^--- \S+ ping statistics ---$", out, re.M), out
    lost = re.search(r"^lost: seq ([\d, ]+)$", out, re.M)
    sent, received, lost_count, _, duplicates, out_of_order = counts.groups()
    return {"sent": int(sent), "received": int(received), "lost": int(lost_count),
            "duplicates": int(duplicates), "out_of_order": int(out_of_order),
            "rtt": [float(x) for x in rtt.groups()],
            "lost_seq": [int(s) for s in lost.group(1).split(", ")] if lost else []}


# -- the normal exchange -----------------------------------------------------


def test_echo_with_sendto_one_datagram_per_message(lab, logs):
    _, _, client = lab
    code, out = sh(client, f"{ECHO} hello 'one sendto, one datagram' exit 'not sent'")
    assert code == 0, out
    assert re.search(r"reply from \S+:9999: 5 bytes: b'hello', rtt [\d.]+ ms", out), out
    assert "24 bytes: b'one sendto, one datagram'" in out
    assert out.count("reply from") == 2 and "not sent" not in out  # "exit" ends
    text = logs[0].wait("24 bytes: b'one sendto, one datagram': echoed")
    assert "5 bytes: b'hello': echoed" in text and "not sent" not in text


def test_echo_with_connect_uses_send_and_recv(lab, logs):
    _, _, client = lab
    code, out = sh(client, f"{ECHO} --connect connected 'no handshake'")
    assert code == 0, out
    assert "9 bytes: b'connected'" in out and "12 bytes: b'no handshake'" in out
    logs[0].wait("12 bytes: b'no handshake': echoed")


def test_echo_reads_lines_from_stdin_and_an_empty_line_is_an_empty_datagram(lab, logs):
    _, _, client = lab
    code, out = sh(client, f"printf 'first\\n\\nexit\\nnever\\n' | {ECHO}")
    assert code == 0, out
    assert "5 bytes: b'first'" in out and "0 bytes: b''" in out and "never" not in out
    logs[0].wait("0 bytes: b'': echoed")


def test_message_boundaries_are_kept(lab, logs):
    # Several sendto() back to back, nothing read in between: a stream would
    # merge them; UDP hands back exactly as many datagrams, each whole.
    _, _, client = lab
    sizes = [1, 2, 3, 100, 1000, 1472, 4000, 7]
    report = peer(client, send=sizes)
    assert len(report["received"]) == len(sizes), report
    assert sorted(report["received"]) == sorted(report["sent"])
    assert sorted(size for size, _ in report["received"]) == sorted(sizes)
    assert report["foreign"] == 0


def test_echo_against_the_lossy_server_resends_what_was_dropped(lab):
    # Each message is resent by the client until echoed: the n-th datagram
    # this socket sends is lost if the n-th draw of the seeded stream says so.
    _, _, client = lab
    messages = ["alpha", "bravo", "charlie", "delta"]
    code, out = sh(client, f"{CLIENT} echo --host lossy --port {LOSSY_PORT} --timeout {PING_TIMEOUT} "
                           + " ".join(messages))
    assert code == 0, out
    lost = drop_schedule(10)
    sent = resends = 0
    for _ in messages:  # replay the schedule: how many resends it implies
        while sent in lost:
            sent += 1
            resends += 1
        sent += 1
    assert out.count("(lost: UDP does not retransmit): sending it again") == resends, out
    assert all(f"bytes: b'{m}', rtt" in out for m in messages), out


# -- the pinger --------------------------------------------------------------


def test_ping_loss_is_replayed_exactly_and_matches_the_server_log(lab, logs):
    _, lossy_log = logs
    _, _, client = lab
    expected = drop_schedule(20)
    assert expected == [1, 3, 6, 9, 10, 14]  # what labs/udp/lab.toml tells the student
    summaries = []
    for _ in range(2):
        code, out = sh(client, f"{PING} --count 20")
        assert code == 0, out
        assert out.startswith("PING ") and "20 pings of 16 bytes" in out, out
        for seq in expected:
            assert f"seq={seq}: request timed out" in out, out
        summaries.append(ping_summary(out))
    first, second = summaries
    assert first["lost_seq"] == second["lost_seq"] == expected
    assert {k: v for k, v in first.items() if k != "rtt"} == {k: v for k, v in second.items() if k != "rtt"}
    assert (first["sent"], first["received"], first["lost"]) == (20, 14, 6)
    assert first["duplicates"] == first["out_of_order"] == 0
    low, avg, high, stddev = first["rtt"]
    assert 0 < low <= avg <= high and stddev >= 0
    # Each run is a new socket, so a new client address on the server's side.
    deadline = time.monotonic() + 10
    while len(dropped := lossy_log.dropped()) < 2 or any(len(s) < 6 for s in dropped.values()):
        assert time.monotonic() < deadline, lossy_log.since_start()
        time.sleep(0.1)
    assert list(dropped.values()) == [expected, expected], dropped


def test_ping_against_the_plain_server_loses_nothing(lab):
    _, _, client = lab
    code, out = sh(client, f"{CLIENT} ping --host server --port {PORT} --count 20 --size 100")
    assert code == 0, out
    summary = ping_summary(out)
    assert (summary["sent"], summary["received"], summary["lost"]) == (20, 20, 0), out
    assert summary["lost_seq"] == [] and "lost: seq" not in out
    assert out.count(": 100 bytes from ") == 20


def test_ping_with_nobody_listening_exits_1(lab):
    _, _, client = lab
    code, out = sh(client, f"{CLIENT} ping --host server --port 9 --count 2 --timeout 0.2")
    assert code == 1, out
    assert "rtt min" not in out and "2 sent, 0 received, 2 lost (100.0% loss)" in out, out
    assert "lost: seq 0, 1" in out


# -- concurrency -------------------------------------------------------------


def test_two_clients_pinging_at_once_each_get_their_own_replies(lab, logs):
    # One socket serves both; each client address has its own seeded stream,
    # so each loses exactly what it would have lost alone.
    _, lossy_log = logs
    _, _, client = lab
    both = (f"{PING} --count 20 --interval 0.05 > /tmp/a.out 2>&1 & a=$!; "
            f"{PING} --count 20 --interval 0.05 > /tmp/b.out 2>&1 & b=$!; "
            "wait $a; sa=$?; wait $b; sb=$?; cat /tmp/a.out; echo =====; cat /tmp/b.out; exit $((sa + sb))")
    code, out = sh(client, both)
    assert code == 0, out
    outs = out.split("=====")
    expected = drop_schedule(20)
    for one in outs:
        summary = ping_summary(one)
        assert (summary["sent"], summary["received"], summary["lost_seq"]) == (20, 14, expected), one
        assert summary["duplicates"] == summary["out_of_order"] == 0
        assert "ignored" not in one and "UNEXPECTED" not in one  # no reply meant for the other
    deadline = time.monotonic() + 10
    while len(dropped := lossy_log.dropped()) < 2 or any(len(s) < 6 for s in dropped.values()):
        assert time.monotonic() < deadline, lossy_log.since_start()
        time.sleep(0.1)
    assert list(dropped.values()) == [expected, expected], dropped
    # They really were served at once: the two clients' lines interleave.
    lines = [line for line in lossy_log.since_start().splitlines() if " ping seq=" in line]
    first, second = (peer_addr for peer_addr in dropped)
    owners = [first if f" {first} " in line else second for line in lines]
    assert owners.index(second) < len(owners) - 1 - owners[::-1].index(first), lines


# -- oversized datagrams -----------------------------------------------------


def test_over_65507_bytes_is_refused_by_the_kernel_and_nothing_is_sent(lab, logs):
    server_log, _ = logs
    _, _, client = lab
    code, out = sh(client, f"{ECHO} --size {p.MAX_PAYLOAD_IPV4 + 1}")
    assert code == 3, out
    assert ("error: a 65508-byte datagram was refused by the kernel (EMSGSIZE): a UDP datagram over IPv4 "
            "carries at most 65507 bytes") in out and "Nothing was sent." in out
    assert "Traceback" not in out
    assert_still_serving(client, server_log)
    assert "65508 bytes" not in server_log.since_start()  # logged before still-here, had it come


def test_expect_refusal_turns_the_refusal_into_success_and_the_rest_into_failure(lab):
    _, _, client = lab
    code, out = sh(client, f"{ECHO} --size 65508 --expect-refusal")
    assert code == 0 and "refused, as expected" in out, out
    code, out = sh(client, f"{ECHO} --size 100 --expect-refusal 2>&1")
    assert code == 1 and "expected to be refused as too big, and was not" in out, out


def test_3000_bytes_are_fragmented_and_echoed_whole(lab, logs):
    server, _, client = lab
    server_log, _ = logs
    reassembled = snmp(server, "Ip", "ReasmOKs")
    code, out = sh(client, f"{ECHO} --size 3000")
    assert code == 0, out
    # The client only accepts a reply equal to what it sent.
    assert re.search(r"reply from \S+: 3000 bytes: b'0123456789abcdef.*'\.\.\., rtt", out), out
    server_log.wait("3000 bytes: b'0123456789abcdef")
    assert snmp(server, "Ip", "ReasmOKs") > reassembled  # it came in fragments


def test_3000_bytes_with_dont_fragment_are_refused_naming_the_path_mtu(lab, logs):
    server_log, _ = logs
    _, _, client = lab
    mtu = int(sh(client, "cat /sys/class/net/eth0/mtu")[1])
    code, out = sh(client, f"{ECHO} --size 3000 --dont-fragment")
    assert code == 3, out
    assert "error: a 3000-byte datagram was refused by the kernel (EMSGSIZE)" in out
    assert f"(path MTU: {mtu} bytes, so at most {mtu - p.OVERHEAD_IPV4} bytes of UDP payload)" in out, out
    assert "Don't Fragment is set" in out
    assert_still_serving(client, server_log)
    assert "3000 bytes" not in server_log.since_start()


def test_the_largest_payload_that_fits_with_dont_fragment_gets_through(lab):
    _, _, client = lab
    mtu = int(sh(client, "cat /sys/class/net/eth0/mtu")[1])
    size = mtu - p.OVERHEAD_IPV4
    code, out = sh(client, f"{ECHO} --size {size} --dont-fragment")
    assert code == 0 and f": {size} bytes: " in out, out
    code, out = sh(client, f"{ECHO} --size {size + 1} --dont-fragment")
    assert code == 3, out


# -- software nobody here wrote ---------------------------------------------


def test_nc_gets_its_datagram_back(lab, logs):
    _, _, client = lab
    code, out = sh(client, f"printf hello | timeout 10 nc -u -w1 server {PORT}")
    assert out == "hello", (code, out)
    logs[0].wait("5 bytes: b'hello': echoed")


def test_socat_gets_its_datagram_back(lab, logs):
    _, _, client = lab
    code, out = sh(client, f"printf 'from socat' | timeout 10 socat -t1 - UDP:server:{PORT}")
    assert (code, out) == (0, "from socat")
    logs[0].wait("10 bytes: b'from socat': echoed")


def test_our_pinger_against_socat_as_the_echo_server(lab):
    _, _, client = lab
    code, out = sh(client, "timeout 20 socat UDP-RECVFROM:7777,fork PIPE & s=$!; sleep 0.5; "
                           f"{CLIENT} ping --host 127.0.0.1 --port 7777 --count 5 --timeout 2; r=$?; "
                           "kill $s; exit $r")
    assert code == 0, out
    summary = ping_summary(out)
    assert (summary["sent"], summary["received"], summary["lost"]) == (5, 5, 0), out


# -- bad input: nothing crashes, the server still serving ------------------


@pytest.mark.parametrize("garbage", [
    b"\xff\xfe\x00garbage\x00\x01",
    b"PING\x00\x00",  # a ping's magic, too short for its header
    b"PING" + b"\xff" * 12,  # a ping from the far future: the server does not care
    bytes(range(256)) * 4,
], ids=["binary", "short-ping", "odd-ping", "1k-of-every-byte"])
def test_garbage_is_echoed_like_anything_else(lab, logs, garbage):
    _, _, client = lab
    report = peer(client, send=[garbage.hex()])
    assert report["received"] == report["sent"], report
    logs[0].wait(f"{len(garbage)} bytes: ")
    assert_still_serving(client, logs[0])


def test_garbage_to_the_pinger_is_counted_not_fatal(lab):
    # An echo server nobody here wrote, answering every ping with text.
    _, _, client = lab
    code, out = sh(client, "timeout 20 socat UDP-RECVFROM:7778,fork SYSTEM:'echo not a ping' & s=$!; sleep 0.5; "
                           f"{CLIENT} ping --host 127.0.0.1 --port 7778 --count 2 --timeout 0.3; r=$?; "
                           "kill $s; exit $r")
    assert code == 1, out  # no ping came back
    assert out.count("ignored a reply that is not a ping") >= 2, out
    assert "2 sent, 0 received, 2 lost (100.0% loss), 0 duplicates, 0 out of order" in out
    assert ", 2 unexpected" in out, out


def test_an_empty_datagram_is_echoed_empty(lab, logs):
    _, _, client = lab
    report = peer(client, send=[""])
    assert report["received"] == report["sent"] == [[0, report["sent"][0][1]]], report
    logs[0].wait("0 bytes: b'': echoed")
    assert_still_serving(client, logs[0])


def test_a_maximum_size_datagram_is_echoed_whole(lab, logs):
    _, _, client = lab
    report = peer(client, send=[p.MAX_PAYLOAD_IPV4])
    assert report["received"] == report["sent"], report  # not cut at socketserver's 8192
    code, out = sh(client, f"{ECHO} --size {p.MAX_PAYLOAD_IPV4}")
    assert code == 0 and f": {p.MAX_PAYLOAD_IPV4} bytes: b'0123456789abcdef" in out, out
    logs[0].wait(f"{p.MAX_PAYLOAD_IPV4} bytes: b'0123456789abcdef")
    assert_still_serving(client, logs[0])


def test_a_burst_of_2000_datagrams(lab, logs):
    # Sent without reading: what the client's buffer cannot hold is lost in
    # its kernel, but every echo that comes back is one that was sent, once.
    _, _, client = lab
    report = peer(client, burst=2000, quiet=1, max_wait=15)
    assert len(report["sent"]) == 2000
    received = report["received"]
    assert 0 < len(received) <= 2000, len(received)
    sent = {tuple(d) for d in report["sent"]}
    assert all(tuple(d) in sent for d in received) and len({tuple(d) for d in received}) == len(received)
    assert_still_serving(client, logs[0])


def test_more_addresses_than_the_server_remembers_then_the_loss_replays_as_before(lab, logs):
    # Each address gets a stream of its own; the server remembers a bounded
    # number of them (Dropper.max_peers). A flood of new addresses neither
    # kills it nor changes what a new client loses. The flood's ports are
    # below the ephemeral range, so the pinger's own port cannot be one the
    # server still remembers.
    server_log, lossy_log = logs
    _, _, client = lab
    addresses = 1100
    report = peer(client, host="lossy", port=LOSSY_PORT, burst=addresses, first_port=20000, max_wait=30)
    # A fresh address's first datagram is never dropped with this seed: all echoed.
    assert drop_schedule(1) == []
    assert sorted(report["received"]) == sorted(report["sent"]), len(report["received"])
    flood = re.findall(r":(\d+) 12 bytes: b'burst \d+': (\w+)", lossy_log.wait("b'burst 001099'"))
    assert len({port for port, _ in flood}) == addresses  # more than it remembers
    code, out = sh(client, f"{PING} --count 20")
    assert code == 0, out
    assert ping_summary(out)["lost_seq"] == drop_schedule(20), out
    assert_still_serving(client, server_log)
    assert_still_serving(client, logs[0])


def test_a_client_that_sends_and_vanishes(lab, logs):
    # The echoes go to a closed port: the client's kernel answers ICMP port
    # unreachable, which an unconnected server socket never hears of.
    server, _, client = lab
    unreachable = snmp(server, "Icmp", "InDestUnreachs")
    report = peer(client, send=[1000] * 50, vanish=True)
    assert len(report["sent"]) == 50
    deadline = time.monotonic() + 10
    while snmp(server, "Icmp", "InDestUnreachs") <= unreachable:
        assert time.monotonic() < deadline, "no echo ever reached the closed port"
        time.sleep(0.1)
    code, out = sh(client, f"{ECHO} after-the-vanished")
    assert code == 0 and "18 bytes: b'after-the-vanished'" in out, out
    assert "cannot echo it" not in logs[0].since_start()
    assert_still_serving(client, logs[0])


def test_connected_client_hears_of_nobody_listening(lab):
    _, _, client = lab
    code, out = sh(client, f"{CLIENT} echo --host server --port 9 --connect --timeout 0.5 hi 2>&1")
    assert code == 2, out
    assert "nobody is listening on server:9: the kernel got an ICMP port unreachable" in out
    code, out = sh(client, f"{CLIENT} echo --host server --port 9 --timeout 0.2 --retries 1 hi 2>&1")
    assert code == 1, out  # unconnected: it only times out
    assert "gave up on 2 bytes: b'hi' after 2 tries" in out and "try --connect" in out
