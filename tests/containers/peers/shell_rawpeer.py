"""A misbehaving shell client, run inside the client container by the tests.

Sends exactly what it is told to, in order, and reports every byte the server
sent back -- undecoded, as hex, so the tests check the wire and not our own
decoder -- as one JSON line: {"local": "ip:port", "chunks": [hex, ...],
"eof": bool, "error": str or null}.

    python3 shell_rawpeer.py HOST PORT [--line TEXT | --send HEX | --fill HEX N | --pause S | --recv S | --shut]...
                             [--close | --reset] [--read SECONDS]

--line sends TEXT as UTF-8 plus "\\n"; --send sends raw bytes, --fill sends
them N times (an argument is limited to 128 KiB); --recv waits up to S seconds
for one recv (one chunk); --shut half-closes (the server sees the end of the
stream after what was sent, so it replies, then closes); these run in the
order given. --close closes right after, without reading; --reset closes with
an RST (SO_LINGER 0).
Otherwise --read waits up to SECONDS in all (default 5) until the server closes.
"""

import json
import socket
import struct
import sys
import time


def parse(argv):
    host, port, words = argv[0], int(argv[1]), iter(argv[2:])
    actions, end, read = [], None, 5.0
    for word in words:
        if word == "--line":
            actions.append(("send", next(words).encode() + b"\n"))
        elif word == "--send":
            actions.append(("send", bytes.fromhex(next(words))))
        elif word == "--fill":
            actions.append(("send", bytes.fromhex(next(words)) * int(next(words))))
        elif word == "--shut":
            actions.append(("shut", None))
        elif word == "--pause":
            actions.append(("pause", float(next(words))))
        elif word == "--recv":
            actions.append(("recv", float(next(words))))
        elif word in ("--close", "--reset"):
            end = word[2:]
        elif word == "--read":
            read = float(next(words))
        else:
            raise SystemExit(f"shell_rawpeer: unknown argument {word!r}")
    return host, port, actions, end, read


def main() -> int:
    host, port, actions, end, read = parse(sys.argv[1:])
    sock = socket.create_connection((host, port), timeout=10)
    # "local" names this peer as the server's log does, e.g. 172.18.0.3:51234
    report = {"local": "%s:%d" % sock.getsockname()[:2], "chunks": [], "eof": False, "error": None}
    try:
        for kind, value in actions:
            if kind == "send":
                sock.sendall(value)
            elif kind == "shut":
                sock.shutdown(socket.SHUT_WR)
            elif kind == "pause":
                time.sleep(value)
            else:
                sock.settimeout(value)
                chunk = sock.recv(65536)
                report["chunks"].append(chunk.hex())
                if not chunk:
                    report["eof"] = True
        if end == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        if end is None and not report["eof"]:
            deadline = time.monotonic() + read
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                chunk = sock.recv(65536)
                if not chunk:
                    report["eof"] = True
                    break
                report["chunks"].append(chunk.hex())
    except OSError as exc:  # a timeout or a reset is a result to report, not a crash
        report["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        sock.close()
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
