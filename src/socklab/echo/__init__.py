"""The echo exercise: the server sends each line back, upper-cased (or as is).

``protocol`` is the wire format (pure, shared by all sides); ``server`` and
``client`` are the two ends. The server's three loops (blocking, threaded,
selectors) live in ``socklab.loops``, so other exercises can reuse them.
"""
