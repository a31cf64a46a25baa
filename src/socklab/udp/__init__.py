"""The UDP exercise: a datagram echo server, and a client that echoes or pings.

``protocol`` is the ping datagram format and ``stats`` the ping summary (both
pure, no sockets); ``server`` and ``client`` are the two ends.
"""
