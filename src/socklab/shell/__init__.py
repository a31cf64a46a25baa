"""The shell exercise, half an SSH: run a command line on the server, get its output.

``protocol`` is the wire format in three framings (naive, ack, length: the
sticky-packet lesson); ``runner`` runs a command within limits; ``server`` and
``client`` are the two ends.
"""
