import sys

from socklab.cli import main

sys.exit(main())
