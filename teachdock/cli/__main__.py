"""``python -m teachdock.cli``: the ``teachdock`` command without the console script."""

import sys

from teachdock.cli import main

sys.exit(main())
