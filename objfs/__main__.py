"""`python -m objfs`, used to start the mount daemon with the same interpreter."""

import sys

from .cli.main import main

sys.exit(main())
