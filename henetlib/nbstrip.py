"""The study notebooks as git stores them: no outputs, no execution counts, no ``language_info`` (JupyterLab's
autosave adds it minutes after a notebook opens), no UI state; the cell ids stay the notebooks' own.

Two ways in, one rule (nbstripout's, with :data:`EXTRA_KEYS`): ``python -m henetlib.nbstrip`` is the git clean
filter that ``.gitattributes`` names for ``notebooks/*.ipynb`` (``make env`` configures it), and
:func:`pre_save_hook` strips a study notebook before JupyterLab writes it (``make lab``). The filter alone keeps
outputs out of commits, but ``git status`` still lists a file whose size changed until it is added again; a
file saved already stripped is byte-identical to the committed one, so ``git status`` stays clean.

Light on purpose: the Jupyter server and git import it, never torch.
"""

from __future__ import annotations

import re
import sys
import warnings
from typing import Any

# nbstripout's own defaults (what its command line strips besides outputs and counts), and language_info
EXTRA_KEYS = ["metadata.signature", "metadata.widgets", "metadata.language_info", "cell.metadata.collapsed",
              "cell.metadata.ExecuteTime", "cell.metadata.execution", "cell.metadata.heading_collapsed",
              "cell.metadata.hidden", "cell.metadata.scrolled"]
# the study notebooks, relative to the server's root (make lab serves notebooks/); a user's own keep outputs
STUDY_NOTEBOOK = re.compile(r"\d\d_[^/]*\.ipynb")


def strip(nb: Any) -> Any:
    """``nb`` (a ``NotebookNode``, changed in place) without outputs, counts or :data:`EXTRA_KEYS`."""
    from nbstripout import strip_output

    return strip_output(nb, keep_output=False, keep_count=False, keep_id=True, extra_keys=EXTRA_KEYS)


def pre_save_hook(model: dict, path: str, **kwargs: Any) -> None:
    """Jupyter's ``ContentsManager.pre_save_hook``: a study notebook is saved stripped (its outputs stay in
    the browser until the page reloads; ``make reproduce`` keeps executed copies in ``reports/``)."""
    if model.get("type") == "notebook" and STUDY_NOTEBOOK.fullmatch(path.lstrip("/")):
        import nbformat

        model["content"] = strip(nbformat.from_dict(model["content"]))


def main() -> None:
    """The git clean filter: a notebook on standard input, stripped on standard output (UTF-8 whatever the
    locale, and nbformat's layout, as JupyterLab writes it)."""
    import nbformat

    with warnings.catch_warnings():  # nbformat's notes on old or odd notebooks would land in git's output
        warnings.simplefilter("ignore", UserWarning)
        nb = nbformat.reads(sys.stdin.buffer.read().decode("utf-8"), as_version=nbformat.NO_CONVERT)
        text = nbformat.writes(strip(nb))
    sys.stdout.buffer.write((text if text.endswith("\n") else text + "\n").encode("utf-8"))


if __name__ == "__main__":
    main()
