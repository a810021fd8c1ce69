"""``python -m arcade_cabinet``: the same as the ``arcade-cabinet`` command."""

import sys

from .cli import main

sys.exit(main())
