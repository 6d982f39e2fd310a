"""``python -m shunt.daemon CONFIG [--once] [-v] [--dry-run]``: the same as
the ``cloud-shunt-sync`` console script (see :mod:`shunt.daemon.daemon`)."""

import sys

from shunt.daemon.daemon import main

sys.exit(main())
