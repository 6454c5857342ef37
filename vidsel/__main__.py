"""``python -m vidsel``: the same command line as the ``vidsel`` console script."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
