"""``python -m sktail``: the same command line as the ``sktail`` script."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
