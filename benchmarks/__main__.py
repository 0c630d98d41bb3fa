"""``python -m benchmarks``: run the benchmark suite (see ``benchmarks/__init__.py``)."""

import sys

from .driver import main

sys.exit(main())
