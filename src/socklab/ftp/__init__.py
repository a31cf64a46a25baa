"""The FTP-like exercise: get, put and ls of files over one TCP connection.

``protocol`` is the wire format (pure, shared by all sides); ``server`` and
``client`` are the two ends.
"""
