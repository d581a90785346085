"""``python -m medswin`` is the ``medswin`` console script (also what ``torchrun -m medswin`` runs)."""

import sys

from medswin.cli.main import main

sys.exit(main())
