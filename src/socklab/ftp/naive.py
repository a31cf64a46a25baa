"""The tutorials' file transfer, as they wrote it: the baseline, not an example.

    client -> "get NAME"
    server -> the size as decimal text          e.g. "16777216"
    client -> "ready"                           (so the size and the file do not merge in one recv)
    server -> the file, line by line, one send() per line
    server -> the MD5 hex digest
    client: recv(1024) until `size` bytes (asking for at most the remainder,
            so the digest is not swallowed), MD5 as it goes, compare

Fixed only to run on Python 3 (bytes). It serves one client at a time and
has no error handling: `make bench` measures socklab's ftp against it, and a
student can run it to compare (`python -m socklab server ftp-naive`).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import time


def serve(root: str, port: int) -> None:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", port))
    server.listen(5)
    print(f"server: naive ftp listening on 0.0.0.0:{port}", flush=True)
    while True:
        conn, _ = server.accept()
        command = conn.recv(1024).decode()
        name = os.path.join(root, command.split()[1])
        conn.send(str(os.path.getsize(name)).encode())
        conn.recv(1024)  # "ready"
        md5 = hashlib.md5()
        with open(name, "rb") as f:
            for line in f:
                conn.send(line)
                md5.update(line)
        conn.send(md5.hexdigest().encode())
        conn.close()


def get(host: str, port: int, name: str, directory: str) -> int:
    started = time.monotonic()
    client = socket.create_connection((host, port))
    client.send(f"get {name}".encode())
    size = int(client.recv(1024).decode())
    client.send(b"ready")
    received, md5 = 0, hashlib.md5()
    with open(os.path.join(directory, name), "wb") as f:
        while received < size:
            data = client.recv(min(1024, size - received))
            f.write(data)
            md5.update(data)
            received += len(data)
    digest = client.recv(1024).decode()
    client.close()
    seconds = time.monotonic() - started
    status = "OK" if digest == md5.hexdigest() else "MISMATCH"
    print(f"get {name}: {size} bytes, {seconds:.2f} s, {size / seconds / 1e6:.1f} MB/s, md5 {status}")
    return 0 if status == "OK" else 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="server", help="(client) server to connect to")
    parser.add_argument("--port", type=int, default=2122, help="TCP port (default: %(default)s)")
    parser.add_argument("--root", default="/srv/files", help="(server) folder served")
    parser.add_argument("--dir", default=".", help="(client) where the download goes")
    parser.add_argument("name", nargs="?", help="(client) the file to get")


def main(args: argparse.Namespace) -> int:
    if args.role == "server":
        serve(args.root, args.port)
        return 0
    if not args.name:
        raise SystemExit("client ftp-naive: name the file to get")
    return get(args.host, args.port, args.name, args.dir)
