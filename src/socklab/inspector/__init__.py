"""The inspector role: what crossed the network, read from a capture.

``pcap`` reads tcpdump's files, ``summary`` tells each conversation's story,
``capture`` runs tcpdump beside the server and summarizes when stopped.
"""
