"""``python -m henetlib``: the command line of :mod:`henetlib.cli`."""

import sys

from henetlib.cli import cli

sys.exit(cli())
