"""Digests of served files, remembered so that a file is hashed once, not at every get.

A file already hashed can then go out with ``socket.sendfile()`` (zero copy:
the bytes never enter Python), its D frame taken from here. This is what web
servers do with ETags: the validator of a file is computed once and reused
for as long as the file's identity and metadata say it has not changed.

The key is what ``fstat`` says of the open file: device, inode, size, mtime
and ctime (nanoseconds). Any write changes mtime and ctime, and ctime cannot
be set back by ``touch`` or ``utime``; a file replaced by a rename is another
inode. Two cautions make the key trustworthy:

- A write in the same clock tick as the hash would keep mtime and ctime
  unchanged (file timestamps are coarse: a jiffy, or 2 s on some file
  systems). So a digest is remembered only for a file whose mtime and ctime
  were already ``SETTLE_NS`` old when hashing began ("racy git" has the same
  rule); a newer file is hashed again at each get until it settles.
- A file changed while it was hashed gets no entry: the digest covers bytes
  of two versions. The caller re-stats after the send and says so with
  ``remember()`` only when nothing changed.

A cached digest cannot make a wrong file verify: the receiver checks the
bytes it got against it, and only the exact bytes hashed earlier match. The
worst a stale entry could cause is a false mismatch, and the rules above are
there to prevent that too.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict

SETTLE_NS = 2_000_000_000

Key = tuple[int, int, int, int, int]


def file_key(st: os.stat_result) -> Key:
    """The identity and version of a file, as far as its metadata tells."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def settled(st: os.stat_result, hashing_started_ns: int) -> bool:
    """Whether the file was last changed long enough before hashing began
    that a later change cannot leave its timestamps as they were."""
    return max(st.st_mtime_ns, st.st_ctime_ns) <= hashing_started_ns - SETTLE_NS


class DigestCache:
    """Digests by (algorithm, file key); the oldest forgotten past ``capacity``.

    Shared by the handler threads of one server, hence the lock.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, Key], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, algorithm: str, st: os.stat_result) -> bytes | None:
        entry = (algorithm, file_key(st))
        with self._lock:
            digest = self._entries.get(entry)
            if digest is not None:
                self._entries.move_to_end(entry)
            return digest

    def remember(self, algorithm: str, before: os.stat_result, after: os.stat_result,
                 digest: bytes, hashing_started_ns: int) -> bool:
        """Keep ``digest`` for the file that ``before`` and ``after`` (the stats
        around the hashing) describe, if it is safe to; True if kept."""
        if file_key(before) != file_key(after) or not settled(after, hashing_started_ns):
            return False
        with self._lock:
            self._entries[(algorithm, file_key(after))] = digest
            self._entries.move_to_end((algorithm, file_key(after)))
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        return True

    def forget(self, algorithm: str, st: os.stat_result) -> None:
        with self._lock:
            self._entries.pop((algorithm, file_key(st)), None)


def now_ns() -> int:
    """The clock file timestamps come from (wall clock, not monotonic)."""
    return time.time_ns()
