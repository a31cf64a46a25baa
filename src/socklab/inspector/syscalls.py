"""The server's socket system calls (strace), each beside the Python call that made it.

``make lab-echo TRACE=1`` runs the server under
``strace -f -tt -yy -e trace=%network,close``; its lines reach the server's
log on stderr. This module picks them out and says which Python call each
one comes from, as the tutorials' comparison of the two APIs does:

    socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_IP) = 3   <- socket.socket()
    bind(3<TCP:[0.0.0.0:7007]>, {... htons(7007) ...}, 16) = 0   <- sock.bind(address)
    accept4(3<TCP:[...]>, ...) = 4                              <- sock.accept()
"""

from __future__ import annotations

import re

# strace -f -tt on stderr: "[pid  24] 07:21:12.092054 sendto(...)", with no
# "[pid N]" for the first process (and "24 07:..." when written with -o)
TRACE_LINE = re.compile(r"^(?:\[pid\s+(?P<pid>\d+)\]\s+|(?P<opid>\d+)\s+)?"
                        r"(?P<time>\d\d:\d\d:\d\d\.\d+)\s+(?P<call>[a-z0-9_]+\(.*|\+\+\+.*|---.*)$")
CALL_NAME = re.compile(r"^(?P<name>[a-z0-9_]+)\(")

#: system call -> the Python socket call that makes it (CPython's socketmodule.c)
PYTHON_CALL = {
    "socket": "socket.socket()",
    "socketpair": "socket.socketpair()",
    "setsockopt": "sock.setsockopt()",
    "getsockopt": "sock.getsockopt()",
    "bind": "sock.bind(address)",
    "listen": "sock.listen(backlog)",
    "accept": "sock.accept()",
    "accept4": "sock.accept()",
    "connect": "sock.connect(address)",
    "getsockname": "sock.getsockname()",
    "getpeername": "sock.getpeername()",
    "recvfrom": "sock.recv() / recv_into() / recvfrom()",
    "recvmsg": "sock.recvmsg()",
    "sendto": "sock.send() / sendall() / sendto()",
    "sendmsg": "sock.sendmsg()",
    "shutdown": "sock.shutdown(how)",
    "close": "sock.close()",
}

MAX_LINES = 150  # a long transfer makes thousands of recv/send calls


def is_trace_line(line: str) -> bool:
    return bool(TRACE_LINE.match(line))


def python_call(call: str) -> str:
    match = CALL_NAME.match(call)
    return PYTHON_CALL.get(match.group("name"), "") if match else ""


def _interesting(call: str) -> bool:
    # close() of any descriptor is traced; only a socket's is a socket call.
    # (-yy names what a descriptor is: "3<TCP:[...]>", "5<UDP:[...]>".)
    if call.startswith("close("):
        return "<TCP" in call or "<UDP" in call or "<TCPv6" in call or "<UDPv6" in call
    return not call.startswith(("+++", "---"))


def annotate(log: str, max_lines: int = MAX_LINES) -> str:
    """The trace lines of a server log, each with its Python call; at most ``max_lines``."""
    rows = []
    for line in log.splitlines():
        match = TRACE_LINE.match(line.strip())
        if not match or not _interesting(match.group("call")):
            continue
        call = match.group("call")
        pid = match.group("pid") or match.group("opid") or "main"
        rows.append(f"  {match.group('time')} [{pid}] {call}"
                    + (f"\n      <- {python_call(call)}" if python_call(call) else ""))
    shown = rows[:max_lines]
    if len(rows) > max_lines:
        shown.append(f"  ... {len(rows) - max_lines} more system calls (the whole trace is in the server's log)")
    header = "the server's socket system calls (strace), each under the Python call that made it:"
    return "\n".join([header, *shown]) if rows else header + "\n  (none traced)"


def without_trace(log: str) -> str:
    """The server's own log lines, the trace taken out."""
    return "\n".join(line for line in log.splitlines() if not is_trace_line(line.strip()))
