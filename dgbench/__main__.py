"""``python -m dgbench`` is the same as the ``dgbench`` command."""

import sys

from dgbench.cli import main

sys.exit(main())
