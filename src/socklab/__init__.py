"""socklab: network programming with Python sockets, across real containers.

Everything in this package except ``socklab.host`` uses the standard library
only, because it runs inside the lab's containers. ``socklab.host`` builds the
images and drives the labs from the host, with the Docker SDK.
"""

__version__ = "0.1.0"

#: Every container and network socklab creates carries this label; its value
#: is the exercise (``ftp``, ``echo``...), so leftovers can always be found.
LABEL = "org.socklab.lab"

#: Default TCP/UDP port of each exercise.
DEFAULT_PORTS = {"echo": 7007, "shell": 2222, "ftp": 2121, "udp": 9999, "http": 8080}
