"""A misbehaving ftp client, run inside the client container by the tests.

Sends exactly the bytes it is told to, in order, then reports what the
server answered as JSON lines, decoded with the exercise's own protocol
module (the image has socklab on its PYTHONPATH).

    python3 rawpeer.py HOST PORT [--send HEX | --zeros N | --pause S]... [--close] [--read SECONDS]

--send, --zeros and --pause may repeat and run in the order given; --close closes
right after sending, without reading; --read waits up to SECONDS for replies
(until the server closes).
"""

import json
import socket
import sys
import time

from socklab.framing import NEED_DATA, ProtocolError
from socklab.ftp import protocol as p


def parse(argv: list[str]):
    """(host, port, actions in order, close, read seconds)."""
    host, port, words = argv[0], int(argv[1]), iter(argv[2:])
    actions, close, read = [], False, 3.0
    for word in words:
        if word == "--send":
            actions.append(("bytes", bytes.fromhex(next(words))))
        elif word == "--zeros":
            actions.append(("zeros", int(next(words))))
        elif word == "--pause":
            actions.append(("pause", float(next(words))))
        elif word == "--close":
            close = True
        elif word == "--read":
            read = float(next(words))
        else:
            raise SystemExit(f"rawpeer: unknown argument {word!r}")
    return host, port, actions, close, read


def main() -> int:
    host, port, actions, close, read = parse(sys.argv[1:])
    sock = socket.create_connection((host, port), timeout=10)
    for kind, value in actions:
        if kind == "bytes":
            sock.sendall(value)
        elif kind == "zeros":
            chunk = bytes(1 << 20)
            left = value
            while left:
                n = min(left, len(chunk))
                sock.sendall(chunk[:n])
                left -= n
        else:
            time.sleep(value)
    if close:
        sock.close()
        print(json.dumps({"closed": True}))
        return 0

    decoder = p.Decoder()
    deadline = time.monotonic() + read
    eof = False
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            eof = True
            break
        if not data:
            eof = True
            break
        decoder.feed(data)
        try:
            while (event := decoder.next_event()) is not NEED_DATA:
                record = {"type": type(event).__name__}
                if isinstance(event, p.Body):
                    record["size"] = len(event.data)
                elif isinstance(event, p.Digest):
                    record["hex"] = event.value.hex()
                else:
                    record.update({k: v for k, v in vars(event).items()})
                print(json.dumps(record), flush=True)
        except ProtocolError as exc:
            print(json.dumps({"type": "undecodable", "error": str(exc)}))
            break
    print(json.dumps({"eof": eof}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
