import sys

from socklab.host.bench import main

sys.exit(main(sys.argv[1:]))
