"""Small files kept in memory, each checked by one stat() per request.

Why a thread-per-client server needs this. In CPython every blocking call
(recv, send, stat, open...) releases the GIL, and when other client threads
are waiting for it, each release can hand it over: a context switch. Finding
and reading a file the careful way costs about ten such calls (realpath's
lstat per part of the path, stat, open, fstat, read, close) against two for
the request and the reply. Profiled under 8 keep-alive clients, the server
spent more time switching between its threads than running Python. A hit
here costs one stat(); the bench's http row shows the difference.

Why it is safe. An entry remembers the file's identity as it was when the
name was resolved inside the served folder and the bytes were read: device,
inode, size, modification and change times. A request serves the bytes only
if ``os.stat`` of the same real path still shows that identity: the same
inode, unchanged. Renaming, linking, chmod and writing all change the change
time; deleting or replacing the file, or a folder on its path, changes the
inode. Anything else sends the request down the careful path again, where a
name that now leads outside the folder is refused as before.

File times have a granularity (a clock tick, several milliseconds): a file
rewritten with the same size within the tick it was read in would keep its
identity. As git does with its index ("racy clean" entries), a file changed
less than RECENT_NS ago is served but not remembered.

Bounded: files up to MAX_FILE bytes, at most MAX_ENTRIES of them.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

MAX_FILE = 64 * 1024
MAX_ENTRIES = 256
RECENT_NS = 2_000_000_000


def identity(st: os.stat_result) -> tuple[int, int, int, int, int]:
    """What must stay equal for a file's remembered bytes to still be its bytes."""
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


@dataclass(frozen=True)
class CachedFile:
    path: str  # the real path, inside the served folder when it was resolved
    identity: tuple[int, int, int, int, int]
    body: bytes
    content_type: str


class FileCache:
    """name (as requested, decoded) -> CachedFile, shared by the server's threads.

    No lock: each operation is one dict operation, atomic under the GIL, and
    the worst a race can do is read a file twice or evict one entry too many.
    """

    def __init__(self, max_entries: int = MAX_ENTRIES, max_file: int = MAX_FILE) -> None:
        self.max_entries, self.max_file = max_entries, max_file
        self._entries: dict[str, CachedFile] = {}

    def get(self, name: str) -> CachedFile | None:
        """The entry for ``name`` if its file is still the one read; else None (and it is forgotten)."""
        entry = self._entries.get(name)
        if entry is None:
            return None
        try:
            current = identity(os.stat(entry.path))
        except OSError:
            current = None
        if current != entry.identity:
            self._entries.pop(name, None)
            return None
        return entry

    def put(self, name: str, path: str, st: os.stat_result, body: bytes, content_type: str) -> None:
        """Remember ``body``, read from ``path`` whose fstat() was ``st`` before the read."""
        if len(body) != st.st_size or len(body) > self.max_file:
            return  # changed while read, or too big to keep
        if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < RECENT_NS:
            return  # a change within the same clock tick would not show: see the module's docstring
        while len(self._entries) >= self.max_entries:
            try:
                self._entries.pop(next(iter(self._entries)))  # the oldest: dicts keep insertion order
            except (StopIteration, KeyError, RuntimeError):  # another thread got there first
                break
        self._entries[name] = CachedFile(path, identity(st), body, content_type)

    def __len__(self) -> int:
        return len(self._entries)
