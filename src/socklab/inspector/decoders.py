"""Naming what a captured stream carries, with each exercise's own wire format.

The timeline reassembles each direction of a connection and feeds its bytes,
in order, to a stream decoder; the decoder answers with a ``Note`` for every
message that completed in those bytes::

    EXERCISES["ftp"]() -> (client -> server stream, server -> client stream)
    stream.feed(b"C\\x00\\x00\\x00\\x0bget big.bin")  -> [Note('ftp C "get big.bin"')]
    stream.close()                                  the sender's FIN (an HTTP body may end there)

The two streams of a pair may share state: a shell server's reply framing is
the one the client named in its first line, and an HTTP response to HEAD has
no body, so the server side must know what the client asked.

The parsing is the exercises' own (``socklab.<exercise>.protocol``): what the
inspector shows is exactly what the server and client understood. A stream
that breaks the format gets one "undecodable: ..." note, and is not decoded
further: after an error there is no trustworthy message boundary left.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Callable

#: Events taken from one feed at most: every loop is bounded, even on a
#: decoder that would hand out events without consuming bytes.
MAX_EVENTS_PER_FEED = 100_000
PREVIEW = 40  # characters of a message's text shown in a note


@dataclass(frozen=True)
class Note:
    text: str
    data: bool = False  # a piece of a body: a long run of these may be collapsed


def quote(data: bytes | str, limit: int = PREVIEW) -> str:
    """A short, one-line, quoted rendering of text or bytes."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    # Control characters escaped (a newline must not break the timeline's line), the rest as is: "héllo".
    short = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text[:limit])
    short = short.replace('"', '\\"')
    return f'"{short}"' + ("..." if len(text) > limit else "")


class Stream:
    """One direction of a conversation: bytes in, notes out."""

    def __init__(self, decoder=None) -> None:
        self.decoder = decoder

    def feed(self, data: bytes) -> list[Note]:
        self.decoder.feed(data)
        return self.describe(self._events())

    def close(self) -> list[Note]:
        return []

    def _events(self) -> list:
        from socklab.framing import NEED_DATA

        events = []
        for _ in range(MAX_EVENTS_PER_FEED):
            event = self.decoder.next_event()
            if event is NEED_DATA:
                break
            events.append(event)
        return events

    def describe(self, events: list) -> list[Note]:
        raise NotImplementedError

    def parts_ended(self) -> list[int]:
        """Ends of message parts seen in the last feed, as bytes back from its end: for ``frames=``.

        A part is what the tutorials' sender writes with a send() of its own
        (the shell's naive length, before the output); a stream learns where
        one ended only from the byte after it. Taken once: the list is emptied.
        """
        return []


class Guarded:
    """A stream whose failure is a note, never an exception: the inspector must not crash on a capture."""

    def __init__(self, stream: Stream, name: str) -> None:
        self.stream, self.name, self.failed = stream, name, False

    def _call(self, method: Callable[[], list[Note]]) -> list[Note]:
        if self.failed:
            return []
        try:
            return method()
        except Exception as exc:  # a decoder's error, or a bug in one: either way, say it and go on
            self.failed = True
            return [Note(f"undecodable: {self.name}: {type(exc).__name__}: {exc}")]

    def feed(self, data: bytes) -> list[Note]:
        return self._call(lambda: self.stream.feed(data))

    def close(self) -> list[Note]:
        return self._call(self.stream.close)

    def parts_ended(self) -> list[int]:
        return [] if self.failed else self.stream.parts_ended()


# -- ftp ------------------------------------------------------------------------


class FtpStream(Stream):
    def __init__(self) -> None:
        from socklab.ftp import protocol

        super().__init__(protocol.Decoder())
        self.p = protocol
        self.body_size = self.body_done = 0

    def describe(self, events: list) -> list[Note]:
        p, notes, body = self.p, [], 0

        def flush_body() -> None:
            nonlocal body
            if body:
                end = self.body_done == self.body_size
                text = f"ftp body {body} bytes" + (f", end of the {self.body_size}-byte file" if end
                                                    else f" ({self.body_done} of {self.body_size})")
                notes.append(Note(text, data=not end))
                body = 0

        for event in events:
            if isinstance(event, p.Body):  # one note per packet, however the decoder cut the body
                body += len(event.data)
                self.body_done += len(event.data)
                continue
            flush_body()
            if isinstance(event, p.Command):
                notes.append(Note(f"ftp C {quote(str(event))}"))
            elif isinstance(event, p.Ok):
                notes.append(Note(f"ftp O {quote(event.text)}"))
            elif isinstance(event, p.Error):
                notes.append(Note(f"ftp E {quote(str(event))}"))
            elif isinstance(event, p.FileHeader):
                self.body_size, self.body_done = event.size, 0
                notes.append(Note(f"ftp F size={event.size} {event.algorithm}"))
            elif isinstance(event, p.Digest):
                notes.append(Note(f"ftp D {event.value[:8].hex()}... ({len(event.value)} bytes)"))
        flush_body()
        return notes


def ftp() -> tuple[Stream, Stream]:
    return FtpStream(), FtpStream()


# -- echo -----------------------------------------------------------------------


class LineStream(Stream):
    def __init__(self, decoder, prefix: str) -> None:
        super().__init__(decoder)
        self.prefix = prefix

    def describe(self, events: list) -> list[Note]:
        return [Note(f"{self.prefix} line {quote(event.data)}") for event in events]


def echo() -> tuple[Stream, Stream]:
    from socklab.echo import protocol

    # Replies may be longer than lines (upper-casing lengthens some text).
    return LineStream(protocol.LineDecoder(), "echo"), LineStream(protocol.LineDecoder(protocol.MAX_REPLY), "echo")


# -- shell ----------------------------------------------------------------------


class ShellCommands(Stream):
    """Client lines: the optional "framing X" hello, commands, and "ack"."""

    def __init__(self, shared: dict) -> None:
        from socklab.shell import protocol

        super().__init__(protocol.LineDecoder())
        self.p, self.shared, self.first = protocol, shared, True

    def describe(self, events: list) -> list[Note]:
        notes = []
        for line in events:
            chosen = self.p.parse_hello(line) if self.first else None
            self.first = False
            if chosen:
                self.shared["framing"] = chosen
                notes.append(Note(f"shell framing {chosen}"))
            elif line.data + b"\n" == self.p.ACK and self.shared["framing"] == "ack":
                notes.append(Note("shell ack (send the output)"))
            else:
                notes.append(Note(f"shell command {quote(line.data)}"))
        return notes


class ShellReplies(Stream):
    """Server replies, in the framing the client chose (the server's default without a hello)."""

    def __init__(self, shared: dict) -> None:
        from socklab.shell import protocol

        super().__init__(protocol.LengthDecoder())
        self.p, self.shared = protocol, shared
        self.buffer = bytearray()  # naive and ack framings: our own reading, below
        self.expected: int | None = None
        # Fed a byte at a time (the proxy's frames=), a naive reply cannot end
        # where a feed ends: its length ends at the first non-digit instead.
        self.byte_at_a_time = False
        self.digits: int | None = None  # then: how many digits the current naive length has
        self.parts: list[int] = []

    def feed(self, data: bytes) -> list[Note]:
        if self.shared["framing"] == "length":
            return super().feed(data)
        self.buffer += data
        if len(self.buffer) > self.p.MAX_LENGTH_DIGITS + (64 << 20):
            raise self.p.RemoteProtocolError("no reply boundary found in 64 MiB")
        if self.byte_at_a_time and self.shared["framing"] == "naive":
            return self._naive_byte()
        return self._text_reply()

    def _naive_byte(self) -> list[Note]:
        # The tutorials' server sends the length alone (frames= recreates that):
        # it ends at the first non-digit. An output starting with a digit is the
        # lesson's ambiguity: misread here as it is by the tutorials' client.
        if self.digits is None:
            digits = len(self.buffer) - len(self.buffer.lstrip(b"0123456789"))
            if digits == len(self.buffer):
                return []
            if not 0 < digits <= self.p.MAX_LENGTH_DIGITS:
                raise self.p.RemoteProtocolError(f"expected a decimal length, got {bytes(self.buffer[:20])!r}")
            self.digits = digits
            self.parts.append(len(self.buffer) - digits)
        size = int(self.buffer[: self.digits])
        if len(self.buffer) < self.digits + size:
            return []
        output = bytes(self.buffer[self.digits : self.digits + size])
        del self.buffer[: self.digits + size]
        self.digits = None
        return [Note(f"shell naive reply length={size} {quote(output)}")]

    def parts_ended(self) -> list[int]:
        parts, self.parts = self.parts, []
        return parts

    def describe(self, events: list) -> list[Note]:
        notes = []
        for r in events:
            flags = [name for bit, name in ((self.p.TRUNCATED, "truncated"), (self.p.TIMED_OUT, "timed-out"),
                                            (self.p.REFUSED, "refused")) if r.flags & bit]
            notes.append(Note(f"shell length reply out={len(r.stdout)} err={len(r.stderr)} status={r.status}"
                              + (f" {','.join(flags)}" if flags else "")))
        return notes

    def _text_reply(self) -> list[Note]:
        # Not the tutorials' reader (that one takes whatever one recv returned
        # as the length, which is the lesson): the inspector sees the whole
        # stream, so it can say where the length really ended.
        if self.expected is not None:
            if len(self.buffer) < self.expected:
                return []
            output = bytes(self.buffer[: self.expected])
            del self.buffer[: self.expected]
            self.expected = None
            return [Note(f"shell ack output {len(output)} bytes {quote(output)}")]
        digits = bytes(self.buffer[: self.p.MAX_LENGTH_DIGITS])
        digits = digits[: len(digits) - len(digits.lstrip(b"0123456789"))]
        if not digits:
            raise self.p.RemoteProtocolError(f"expected a decimal length, got {bytes(self.buffer[:20])!r}")
        if self.shared["framing"] == "ack" and len(digits) == len(self.buffer):
            self.expected = int(digits)  # the server now waits for the client's "ack"
            self.buffer.clear()
            return [Note(f"shell ack length={self.expected} (alone: the server waits for ack)")]
        # naive (or ack gone wrong): length and output glued together. The split
        # is where the digits so far name exactly the bytes after them; a reply
        # cut across segments may match too early, but the naive server writes
        # each reply with one sendall, so it is nearly always in one segment.
        for k in range(1, len(digits) + 1):
            if int(digits[:k]) == len(self.buffer) - k:
                output = bytes(self.buffer[k:])
                self.buffer.clear()
                return [Note(f"shell {self.shared['framing']} reply length={int(digits[:k])} {quote(output)} "
                             "(length and output in one stream: a single recv gets both)")]
        return []


def shell() -> tuple[Stream, Stream]:
    from socklab.shell import protocol

    shared = {"framing": protocol.DEFAULT_FRAMING}
    return ShellCommands(shared), ShellReplies(shared)


# -- udp ------------------------------------------------------------------------


class Datagrams(Stream):
    """UDP: each feed is one whole datagram (there is nothing to reassemble)."""

    def feed(self, data: bytes) -> list[Note]:
        from socklab.udp import protocol

        return [Note(f"udp {protocol.describe(data)}")]


def udp() -> tuple[Stream, Stream]:
    return Datagrams(), Datagrams()


# -- http -----------------------------------------------------------------------


class HttpRequests(Stream):
    def __init__(self, methods: deque) -> None:
        from socklab.http import protocol

        super().__init__(protocol.RequestDecoder())
        self.methods = methods

    def describe(self, events: list) -> list[Note]:
        notes = []
        for request in events:
            self.methods.append(request.method)  # the response decoder needs it (HEAD: no body)
            body = f" body={len(request.body)}" if request.body else ""
            notes.append(Note(f"http {request.method} {request.target}{body}"))
        return notes


class HttpResponses(Stream):
    def __init__(self, methods: deque) -> None:
        from socklab.http import protocol

        super().__init__(protocol.ResponseDecoder())
        self.p, self.methods = protocol, methods
        self.awaiting_head, self.head_expected, self.body = True, False, 0

    def feed(self, data: bytes) -> list[Note]:
        self.decoder.feed(data)
        return self.describe(self._events())

    def close(self) -> list[Note]:
        self.decoder.feed_eof()  # a body without Content-Length ends here
        return self.describe(self._events())

    def _events(self) -> list:
        from socklab.framing import NEED_DATA

        events = []
        for _ in range(MAX_EVENTS_PER_FEED):
            if self.awaiting_head:
                if not self.decoder.buffered:
                    break  # between responses: nothing to read (and the decoder wants expect() first)
                if not self.head_expected:
                    # Once the server has started a response, the request it answers
                    # was seen: its method says whether a body follows (HEAD: none).
                    self.decoder.expect(self.methods.popleft() if self.methods else "GET")
                    self.head_expected = True
            event = self.decoder.next_event()
            if event is NEED_DATA:
                break
            events.append(event)
            if isinstance(event, self.p.Response):
                self.awaiting_head, self.head_expected = False, False
            elif isinstance(event, self.p.EndOfMessage):
                self.awaiting_head = True
        return events

    def describe(self, events: list) -> list[Note]:
        notes, piece = [], 0
        for event in events:
            if isinstance(event, self.p.Response):
                size = self.p.content_length(event.headers)
                length = f"len={size}" if size is not None else "body until close"
                notes.append(Note(f"http {event.status} {event.reason} {length}".replace("  ", " ")))
                self.body = 0
            elif isinstance(event, self.p.Data):
                piece += len(event.data)
                self.body += len(event.data)
            elif isinstance(event, self.p.EndOfMessage):
                notes.append(Note(f"http end of response, body {self.body} bytes"))
                piece = 0
        if piece:
            notes.append(Note(f"http body {piece} bytes", data=True))
        return notes


def http() -> tuple[Stream, Stream]:
    methods: deque = deque()
    return HttpRequests(methods), HttpResponses(methods)


#: exercise name (the lab's name) -> a pair of fresh streams per conversation:
#: (client -> server, server -> client)
EXERCISES: dict[str, Callable[[], tuple[Stream, Stream]]] = {
    "echo": echo, "ftp": ftp, "http": http, "shell": shell, "udp": udp,
}


def streams_for(exercise: str) -> tuple[Guarded, Guarded] | None:
    """Fresh guarded streams for one conversation, or None when there is no decoder for ``exercise``."""
    factory = EXERCISES.get(exercise)
    if factory is None:
        return None
    try:
        up, down = factory()
    except ImportError:  # an exercise missing from this image: show the packets, undecoded
        return None
    return Guarded(up, f"{exercise} client->server"), Guarded(down, f"{exercise} server->client")


class MessageCutter:
    """Cuts one direction's bytes where the exercise's messages end (the proxy's ``frames=``).

    Fed a byte at a time, the decoder names a message on the byte that completes
    it: that is a boundary. A body's pieces (``Note.data``) are not messages; the
    note that ends a body is. Bytes after the last boundary are returned as a
    piece of their own, not yet ended: the rest of that message comes later.
    A byte at a time costs a few microseconds each: meant for the short
    exchanges of ``make check``, not for bulk transfers.
    """

    def __init__(self, stream: Guarded) -> None:
        self.stream = stream
        stream.stream.byte_at_a_time = True  # for the streams that read differently then (shell naive)

    def cut(self, data: bytes) -> list[tuple[bytes, bool]]:
        """``data`` as (piece, ends_a_message) pairs, in order."""
        pieces, start = [], 0
        for end in range(1, len(data) + 1):
            if self.stream.failed:  # undecodable: no boundaries left to trust
                break
            ended = any(not note.data for note in self.stream.feed(data[end - 1:end]))
            # A part that ended in an earlier piece (already sent) cannot be cut any more.
            for cut in sorted(end - back for back in self.stream.parts_ended()):
                if start < cut < end:
                    pieces.append((data[start:cut], True))
                    start = cut
            if ended:
                pieces.append((data[start:end], True))
                start = end
        if start < len(data):
            pieces.append((data[start:], False))
        return pieces
