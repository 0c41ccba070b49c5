"""``python -m callpipe.demo``: same as ``callpipe demo``."""

import sys

from callpipe.demo.main import main

sys.exit(main())
