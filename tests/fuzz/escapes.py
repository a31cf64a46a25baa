"""Names that try to leave the served folder: the corpus sent to ftp (get, put, ls) and http (GET).

The folder is targets.served_tree: base/root is served; base/secret and
base/outside/canary.txt are canaries; root holds links that point outside
(escape -> ../outside, canary-link -> ../outside/canary.txt, abs-link ->
<base>/outside, etc-link -> /etc).

ESCAPES lead outside the folder on a POSIX file system, or are not usable
names at all (NUL, line breaks, over the length limits): every one must be
refused, by get, put, ls and GET alike.

LOOKALIKES only look like escapes: "..\\secret" or "%2e%2e" are ordinary
names to Linux, fullwidth dots are not dots. Nothing of that name exists, so
a get or GET finds nothing; a put may store it -- inside the folder, under
exactly that name.

HTTP_ONLY are request targets, whose percent-decoding is the server's job:
"%2e%2e" is ".." once decoded, and must be refused like "..".
"""

from __future__ import annotations

from pathlib import Path

#: "{outside}" is replaced by the absolute path of base/outside.
ESCAPES = [
    "../secret",
    "..",
    "../",
    "./../secret",
    "sub/../../secret",
    "sub/./../../secret",
    "../outside/canary.txt",
    "../../../../../../../../etc/passwd",
    "../" * 300 + "etc/passwd",  # 1210 characters: also over the length limit
    "/etc/passwd",
    "//etc/passwd",
    "/../secret",
    "{outside}/canary.txt",
    "escape/canary.txt",  # a link in the folder to a folder outside
    "escape",
    "escape/",
    "sub/../escape/canary.txt",
    "escape/../secret",
    "canary-link",  # a link in the folder to a file outside
    "canary-link/",
    "abs-link/canary.txt",  # an absolute link
    "etc-link/passwd",
    "a.txt\0../../secret",  # NUL: C sees "a.txt"
    "../secret\0.txt",
    "a.txt\n../secret",  # line breaks: one name, two lines in a log or a protocol
    "../secret\r",
    "a.txt\r\nquit",
    "x" * 256,  # one part longer than NAME_MAX
    ("d" * 256 + "/") * 3,
    "\U0001d521" * 70,  # 70 characters, 280 bytes
    "x" * 1025,  # over MAX_NAME
    "../\u202esecret",  # right-to-left override: looks like another name
    "..\u0000/secret",
]

LOOKALIKES = [
    "..\\secret",
    "..\\..\\etc\\passwd",
    "%2e%2e/secret",
    "%2e%2e%2fsecret",
    "..%2fsecret",
    "%252e%252e/secret",
    "...",
    ".../secret",
    "\u2025/secret",  # two dot leader
    "\uff0e\uff0e/secret",  # fullwidth full stops
    ".\u200b./secret",  # a zero-width space between the dots
    "..\u2215secret",  # division slash
    "\u002e\u0307./secret",  # a combining dot above
    "~/secret",
    "~root/.bashrc",
    "file:///etc/passwd",
    "C:\\Windows\\win.ini",
    " ../secret",  # a leading space: a name of " .."
]

HTTP_ONLY = [
    "/%2e%2e/secret",
    "/%2E%2E/secret",
    "/%2e%2e%2fsecret",
    "/..%2fsecret",
    "/.%2e/secret",
    "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/%2fetc%2fpasswd",
    "/%2F%2Fetc/passwd",
    "/sub/%2e%2e/%2e%2e/secret",
    "/escape%2fcanary.txt",
    "/canary%2dlink",
    "/a.txt%00/../../secret",
    "/%00",
    "/a.txt%0a../secret",
    "/%c0%ae%c0%ae/secret",  # overlong UTF-8 for "..": not UTF-8 at all
    "/%e0%80%ae%e0%80%ae/secret",
    "/%ff%fe/secret",
    "http://server/../secret",
    "http://server/%2e%2e/secret",
    "HTTP://server//etc/passwd",
    "/" + "%78" * 300,
    "/..;/secret",
    "/../secret",
    "/./../secret",
]


def escapes(outside: Path) -> list[str]:
    return [name.replace("{outside}", str(outside.resolve())) for name in ESCAPES]
