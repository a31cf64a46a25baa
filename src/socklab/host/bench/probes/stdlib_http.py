"""The reference HTTP server: Python's ThreadingHTTPServer serving a folder, keeping connections alive.

argv: root port. Two settings differ from the defaults, both documented
knobs of http.server: protocol_version HTTP/1.1, without which it closes
after every response, and disable_nagle_algorithm, without which its head
and body, written separately, wait on the client's delayed ACK (40 ms a
response: the comparison would measure a timer, not a server). Otherwise as
shipped: it logs each request on stderr, as socklab's server logs each on
stdout.
"""

import functools
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer


class Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True


if __name__ == "__main__":
    root, port = sys.argv[1], int(sys.argv[2])
    with ThreadingHTTPServer(("0.0.0.0", port), functools.partial(Handler, directory=root)) as server:
        print(f"stdlib http server for {root} on port {port}", flush=True)
        server.serve_forever()
