"""A raw, misbehaving HTTP client, run inside the client container by the http tests.

Sends exactly the bytes it is told to, in order, then prints what the server
sent back, byte for byte, followed by one summary line::

    python3 http_peer.py HOST PORT [--send HEX | --zeros N | --pause S]... [--close | --reset] [--read S]

    <every byte received>
    #peer {"eof": true, "reset": false, "cut_off": false, "sent": 123}

It listens while it sends and pauses: a server that answers and closes while
a slow request is still trickling in stops the sending (``cut_off``), so the
answer is not lost to a reset. --close ends with a FIN right after sending,
--reset with an RST (SO_LINGER 0), both without reading; --read waits up to S
seconds (default 3) for the server to close.
"""

import json
import select
import socket
import struct
import sys
import time


def parse(argv):
    """(host, port, actions in order, ending, read seconds)."""
    host, port, words = argv[0], int(argv[1]), iter(argv[2:])
    actions, ending, read = [], None, 3.0
    for word in words:
        if word == "--send":
            actions.append(("bytes", bytes.fromhex(next(words))))
        elif word == "--zeros":
            actions.append(("bytes", bytes(int(next(words)))))
        elif word == "--pause":
            actions.append(("pause", float(next(words))))
        elif word in ("--close", "--reset"):
            ending = word[2:]
        elif word == "--read":
            read = float(next(words))
        else:
            raise SystemExit(f"http_peer: unknown argument {word!r}")
    return host, port, actions, ending, read


class Peer:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.received = bytearray()
        self.eof = self.reset = False
        self.sent = 0

    def listen(self, seconds):
        """Collect what arrives for ``seconds``, or until the server closes."""
        deadline = time.monotonic() + seconds
        while not self.eof and (left := deadline - time.monotonic()) > 0:
            if not select.select([self.sock], [], [], left)[0]:
                break
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                self.eof = self.reset = True
                break
            if not data:
                self.eof = True
            self.received += data

    def send(self, data):
        try:
            self.sock.sendall(data)
            self.sent += len(data)
        except (BrokenPipeError, ConnectionResetError):
            self.eof = self.reset = True


def main():
    host, port, actions, ending, read = parse(sys.argv[1:])
    peer = Peer(host, port)
    cut_off = False
    for kind, value in actions:
        if peer.eof:
            cut_off = True
            break
        if kind == "bytes":
            peer.send(value)
        else:
            peer.listen(value)
    if ending == "reset":
        peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if ending is None:
        peer.listen(read)
    peer.sock.close()
    sys.stdout.buffer.write(bytes(peer.received))
    summary = {"eof": peer.eof, "reset": peer.reset, "cut_off": cut_off, "sent": peer.sent}
    sys.stdout.buffer.write(b"\n#peer " + json.dumps(summary).encode() + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
