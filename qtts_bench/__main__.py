"""``python -m qtts_bench``: the same command line as ``qtts-bench``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
