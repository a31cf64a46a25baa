"""The timeline as a sequence diagram: an SVG picture, built as text.

Two lifelines, the client on the left and the server on the right, time going
down; one arrow per line of the printed timeline (a collapsed run of data
segments is one dashed arrow), so the picture and the transcript agree::

     client 10.99.0.20:40000          server 10.99.0.10:2121
        |                                   |
        |---- [SYN] handshake 1/3 --------->|   0.000 ms
        |<--- [SYN,ACK] handshake 2/3 ------|   0.041 ms
        |---- ftp C "get big.bin" --------->|   1.210 ms
        |<- - ... 790 data segments - - - - |

Arrows are evenly spaced, not to scale: a capture's interesting moments are
microseconds apart and its transfers take seconds. Colours: green for the
handshake, blue for the close, red for a reset, orange for a retransmission
or a segment out of order.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from socklab.inspector.summary import endpoint_name
from socklab.inspector.timeline import Conversation, Run, Shown, format_row

WIDTH = 980
CLIENT_X, SERVER_X = 250, 730
TOP = 90  # below the lifeline heads
STEP = 34  # vertical distance between arrows
SLOPE = 8  # an arrow goes down a little: the packet takes time to cross
LABEL_CHARS = 64  # about what fits between the lifelines

COLOURS = {"handshake": "#2e7d32", "close": "#1565c0", "reset": "#c62828", "trouble": "#ef6c00",
           "data": "#757575", "message": "#212121"}


def _kind(item: Shown) -> str:
    if isinstance(item, Run):
        return "data"
    marks = " ".join(item.marks)
    if "RESET" in marks:
        return "reset"
    if "RETRANSMISSION" in marks or "OUT OF ORDER" in marks or any(n.text.startswith("undecodable") for n in item.notes):
        return "trouble"
    if "handshake" in marks:
        return "handshake"
    if "close" in marks:
        return "close"
    return "message" if any(not n.data for n in item.notes) else "data"


def _label(item: Shown, several: bool) -> str:
    if isinstance(item, Run):
        return item.describe()
    packet = item.packet
    parts = [f"#{item.conversation.number}"] if several and item.conversation else []
    if packet.proto == "TCP":
        parts.append(f"[{packet.flag_names()}]")
    else:
        parts.append(packet.proto)
    parts += item.marks + [note.text for note in item.notes[:2]]
    if len(item.notes) > 2:
        parts.append(f"(+{len(item.notes) - 2})")
    if packet.proto == "TCP" and not item.notes and packet.payload:
        parts.append(f"len={len(packet.payload)}")
    text = " ".join(parts)
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 3] + "..."


def _from_client(item: Shown, conversations: list[Conversation]) -> bool:
    if isinstance(item, Run) or item.conversation is not None:
        return item.from_client
    servers = {c.server[0] for c in conversations}  # an IP fragment: by its source address
    return item.packet.src not in servers


def _side_title(endpoints: list[str], role: str) -> str:
    unique = sorted(set(endpoints))
    if len(unique) == 1:
        return f"{role} {unique[0]}"
    return f"{role} ({len(unique)} endpoints)"


def sequence_diagram(shown: list[Shown], conversations: list[Conversation], title: str = "") -> str:
    """An SVG document: one arrow per item of ``shown`` (rows and collapsed runs)."""
    several = len(conversations) > 1
    height = TOP + STEP * len(shown) + 40
    client = _side_title([endpoint_name(c.client) for c in conversations], "client")
    server = _side_title([endpoint_name(c.server) for c in conversations], "server")
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="monospace" font-size="12">',
        "<defs>",
        *(f'<marker id="head-{kind}" markerWidth="10" markerHeight="8" refX="9" refY="4" orient="auto">'
          f'<path d="M0,0 L10,4 L0,8 z" fill="{colour}"/></marker>' for kind, colour in COLOURS.items()),
        "</defs>",
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        f'<text x="{WIDTH // 2}" y="20" text-anchor="middle" font-size="14">{escape(title or "what crossed the network")}</text>',
    ]
    for x, name in ((CLIENT_X, client), (SERVER_X, server)):
        out.append(f'<rect x="{x - 130}" y="35" width="260" height="28" fill="#eceff1" stroke="#455a64"/>')
        out.append(f'<text x="{x}" y="53" text-anchor="middle">{escape(name)}</text>')
        out.append(f'<line class="lifeline" x1="{x}" y1="63" x2="{x}" y2="{height - 20}" stroke="#90a4ae" stroke-width="2"/>')
    for index, item in enumerate(shown):
        y = TOP + STEP * index
        kind = _kind(item)
        colour = COLOURS[kind]
        start, end = (CLIENT_X, SERVER_X) if _from_client(item, conversations) else (SERVER_X, CLIENT_X)
        arrow_class = "run" if isinstance(item, Run) else "packet"
        dash = ' stroke-dasharray="6,4"' if isinstance(item, Run) else ""
        # The whole timeline line as a tooltip: the label is cut to fit the picture.
        full = item.describe() if isinstance(item, Run) else format_row(item, 0).strip()
        out.append(f"<g><title>{escape(full)}</title>")
        out.append(f'<line class="{arrow_class} {kind}" x1="{start}" y1="{y}" x2="{end}" y2="{y + SLOPE}" '
                   f'stroke="{colour}" stroke-width="1.5"{dash} marker-end="url(#head-{kind})"/>')
        out.append(f'<text x="{(CLIENT_X + SERVER_X) // 2}" y="{y - 4}" text-anchor="middle" fill="{colour}">'
                   f"{escape(_label(item, several))}</text>")
        when = item.rows[0].ms if isinstance(item, Run) else item.ms
        out.append(f'<text x="{SERVER_X + 12}" y="{y + SLOPE}" fill="#607d8b">{when:.3f} ms</text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"
