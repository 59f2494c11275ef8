"""``python -m tinyfit COMMAND ...``: the command line (tinyfit.cli)."""
import sys

from .cli import main

sys.exit(main())
