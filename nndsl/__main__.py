"""``python -m nndsl``."""

import sys

from nndsl.cli import main

sys.exit(main())
