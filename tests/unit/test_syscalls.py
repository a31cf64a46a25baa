"""Picking strace's lines out of a server log, each with its Python call."""

from __future__ import annotations

from socklab.inspector.syscalls import annotate, is_trace_line, python_call, without_trace

LOG = """\
07:20:58.036127 close(3</etc/ld.so.cache>) = 0
07:21:12.090604 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_IP) = 3<TCP:[969688]>
07:21:12.093648 bind(3<TCP:[969688]>, {sa_family=AF_INET, sin_port=htons(7007), sin_addr=inet_addr("0.0.0.0")}, 16) = 0
server: echo server (blocking, reply upper) listening on 0.0.0.0:7007
07:21:12.093970 listen(3<TCP:[0.0.0.0:7007]>, 64) = 0
[pid    24] 07:21:13.287232 recvfrom(4<TCP:[10.99.0.10:7007->10.99.0.20:41236]>, "hello\\n", 65536, 0, NULL, NULL) = 6
[pid    24] 07:21:13.295044 close(4<TCP:[10.99.0.10:7007->10.99.0.20:41236]>) = 0
[pid    24] 07:21:13.295322 +++ exited with 0 +++
"""


def test_trace_lines_are_told_from_the_servers_own():
    assert is_trace_line("[pid    24] 07:21:13.287232 recvfrom(4, ...) = 6")
    assert is_trace_line("07:21:12.093970 listen(3, 64) = 0")
    assert not is_trace_line("server: 10.99.0.20:41236 connected")
    assert without_trace(LOG) == "server: echo server (blocking, reply upper) listening on 0.0.0.0:7007"


def test_each_socket_call_is_shown_under_its_python_call():
    text = annotate(LOG)
    assert "ld.so.cache" not in text  # closing a file is not a socket call
    assert "socket(AF_INET" in text and "<- socket.socket()" in text
    assert "<- sock.bind(address)" in text and "<- sock.listen(backlog)" in text
    assert "[24] recvfrom(" in text and "<- sock.recv() / recv_into() / recvfrom()" in text
    assert text.count("<- sock.close()") == 1 and "exited with" not in text
    assert "[main] socket(" in text


def test_a_long_trace_is_cut_and_says_so():
    log = "\n".join(f"07:00:00.{i:06d} sendto(4<TCP:[x]>, \"x\", 1, 0, NULL, 0) = 1" for i in range(10))
    text = annotate(log, max_lines=3)
    assert text.count("] sendto(") == 3 and "7 more system calls" in text


def test_unknown_calls_get_no_python_call():
    assert python_call("epoll_wait(5, [], 1, 200) = 0") == ""
    assert python_call("accept4(3, NULL, NULL, SOCK_CLOEXEC) = 4") == "sock.accept()"
