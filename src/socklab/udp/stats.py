"""The ping summary: what came back, counted from the replies alone.

Pure code, fed one event at a time (a ping sent, a reply received), so the
tests can replay any arrival order -- duplicates, replies overtaking each
other -- without a network.

The counts depend only on *which* sequence numbers arrived, never on when:
a reply that comes after its ping timed out still counts as received (it is
late, not lost). So with the server's ``--drop`` seeded, the same pings are
dropped on every run and ``lost`` is the same number every time.

    lost          pings sent whose sequence number never came back
    duplicates    second and later copies of a reply already counted
    out of order  a first reply whose sequence number is lower than one
                  already received (it was overtaken)
    unexpected    replies for a sequence number never sent, or not pings
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

# What on_reply() says about one reply.
NEW, OUT_OF_ORDER, DUPLICATE, UNEXPECTED = "new", "out-of-order", "duplicate", "unexpected"


@dataclass
class PingStats:
    sent: int = 0
    #: the RTT of the first reply to each sequence number, in seconds
    rtts: dict[int, float] = field(default_factory=dict)
    duplicates: int = 0
    out_of_order: int = 0
    unexpected: int = 0
    _highest: int = -1

    def on_sent(self) -> int:
        """Account for one more ping; returns its sequence number (0, 1, 2...)."""
        self.sent += 1
        return self.sent - 1

    def on_reply(self, sequence: int, rtt: float) -> str:
        """Account for one reply; returns NEW, OUT_OF_ORDER, DUPLICATE or UNEXPECTED."""
        if not 0 <= sequence < self.sent or rtt < 0:
            self.unexpected += 1
            return UNEXPECTED
        if sequence in self.rtts:
            self.duplicates += 1
            return DUPLICATE
        self.rtts[sequence] = rtt
        if sequence < self._highest:
            self.out_of_order += 1
            return OUT_OF_ORDER
        self._highest = sequence
        return NEW

    def on_garbage(self) -> None:
        """A datagram that was not a ping at all."""
        self.unexpected += 1

    @property
    def received(self) -> int:
        return len(self.rtts)

    @property
    def lost(self) -> int:
        return self.sent - self.received

    @property
    def lost_sequences(self) -> list[int]:
        return [s for s in range(self.sent) if s not in self.rtts]

    def rtt_ms(self) -> tuple[float, float, float, float] | None:
        """(min, avg, max, stddev) in milliseconds; None when nothing came back."""
        if not self.rtts:
            return None
        values = [r * 1000 for r in self.rtts.values()]
        # Population standard deviation, as ping(8) reports it (its "mdev").
        return min(values), statistics.fmean(values), max(values), statistics.pstdev(values)

    def report(self, target: str) -> str:
        loss = 100.0 * self.lost / self.sent if self.sent else 0.0
        lines = [
            f"--- {target} ping statistics ---",
            f"{self.sent} sent, {self.received} received, {self.lost} lost ({loss:.1f}% loss), "
            f"{self.duplicates} duplicates, {self.out_of_order} out of order"
            + (f", {self.unexpected} unexpected" if self.unexpected else ""),
        ]
        rtt = self.rtt_ms()
        if rtt is not None:
            lines.append("rtt min/avg/max/stddev = {:.3f}/{:.3f}/{:.3f}/{:.3f} ms".format(*rtt))
        if self.lost:
            lines.append("lost: seq " + ", ".join(map(str, self.lost_sequences)))
        return "\n".join(lines)
