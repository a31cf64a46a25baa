"""The inspector role: what crossed the network, read from a capture.

``pcap`` reads tcpdump's files, ``summary`` tells each conversation's story,
``timeline`` shows it packet by packet with the payload named by ``decoders``
(each exercise's own wire format), ``svg`` draws it as a sequence diagram,
``capture`` runs tcpdump beside the server and does all that when stopped.
"""
