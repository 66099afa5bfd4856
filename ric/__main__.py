"""``python -m ric`` is the ``ric`` command."""

import sys

from ric.cli import main

sys.exit(main())
