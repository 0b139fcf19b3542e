"""Command line: ``python -m henetlib reproduce|...``; see ``python -m henetlib --help``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .utils import REPO_ROOT

NOTEBOOK_DIR = REPO_ROOT / "notebooks"


def _reproduce(args: argparse.Namespace) -> int:
    notebooks = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if args.notebooks:
        wanted = set(args.notebooks.split(","))
        notebooks = [nb for nb in notebooks if nb.stem in wanted or nb.stem[:2] in wanted]
    if not notebooks:
        print(f"Nothing to reproduce yet: no study notebooks in {NOTEBOOK_DIR}.")
        return 0
    from .reproduce import run_notebooks

    t0 = time.time()
    ok = run_notebooks(notebooks, profile=args.profile, device=args.device, data_root=args.data_root)
    print(f"Total: {time.time() - t0:.0f} s")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m henetlib", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    rp = sub.add_parser("reproduce", help="execute every study notebook with papermill into reports/")
    rp.add_argument("--profile", default="smoke")
    rp.add_argument("--device", default="auto")
    rp.add_argument("--data-root", default=None, type=Path)
    rp.add_argument("--notebooks", default=None, help="comma-separated notebook stems or numbers (00,01)")
    args = parser.parse_args(argv)
    if args.cmd == "reproduce":
        return _reproduce(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
