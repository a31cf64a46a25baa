"""The http exercise: from the tutorials' hello world to a small HTTP/1.1 server.

``hello`` is step 1 (the tutorials' server, fixed for Python 3); ``protocol``
is the wire format (pure, shared by all sides); ``server`` and ``client`` are
the two ends, written on the socket rather than on http.server/http.client.

Inside this package, the standard library's ``http`` is imported with
absolute imports only (``from http import HTTPStatus``): this package is
``socklab.http``, so there is no clash.
"""
