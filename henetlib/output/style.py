"""The one figure style: print widths (:data:`ONE_COLUMN` 3.3 in, :data:`TWO_COLUMN` 7 in), 8-9 pt text,
TrueType fonts in PDFs, a colour-blind-safe palette whose series also differ by marker and line style."""

from __future__ import annotations

ONE_COLUMN = 3.3  # inches: one column of a two-column paper
TWO_COLUMN = 7.0  # inches: the full text width
MAX_WIDTH, MAX_HEIGHT = 7.2, 9.0  # no figure may be larger (a page's text block with its caption)
DPI = 300
# Okabe & Ito (2008), the palette most colour-vision deficiencies still tell apart; black last
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 2)), (0, (8, 2)))
PAPER_COLOUR = "0.35"  # the paper's numbers: grey, hatched or crossed, never a series colour
OURS_COLOUR = PALETTE[0]
# right and wrong matches in ranked lists: blue and orange, which every common colour-vision deficiency tells
# apart (red against green is the pair most of them cannot); the line style differs too, for greyscale print
MATCH_STYLE = {"right": (PALETTE[0], "-"), "wrong": (PALETTE[1], "--")}
RC = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.title_fontsize": 8,
    "figure.titlesize": 9,
    "axes.linewidth": 0.6,
    "lines.linewidth": 1.2,
    "lines.markersize": 4,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "pdf.fonttype": 42,  # TrueType, not Type 3: publishers' PDF checks reject Type 3
    "ps.fonttype": 42,
    "savefig.dpi": DPI,
    "figure.dpi": 100,
    "image.cmap": "viridis",
}


def use_style() -> None:
    """Apply :data:`RC` and the palette (colour, marker and line style change together) to matplotlib."""
    import matplotlib as mpl
    from cycler import cycler

    mpl.rcParams.update(RC)
    mpl.rcParams["axes.prop_cycle"] = (cycler(color=list(PALETTE)) + cycler(marker=list(MARKERS))
                                       + cycler(linestyle=list(LINESTYLES)))


def series_style(i: int) -> dict:
    """Colour, marker and line style of series ``i``: each series differs in all three."""
    return {"color": PALETTE[i % len(PALETTE)], "marker": MARKERS[i % len(MARKERS)],
            "linestyle": LINESTYLES[i % len(LINESTYLES)]}


def figure(width: str | float = "two", height: float = 2.6, nrows: int = 1, ncols: int = 1, **kwargs):
    """``plt.subplots`` at a print width ("one": 3.3 in, "two": 7 in, or inches), in the project's style,
    with constrained layout, so the saved file is exactly this size and its text prints at 8-9 pt."""
    import matplotlib.pyplot as plt

    use_style()
    w = {"one": ONE_COLUMN, "two": TWO_COLUMN}.get(width, width) if isinstance(width, str) else float(width)
    if w > MAX_WIDTH or height > MAX_HEIGHT:
        raise ValueError(f"a {w:.1f} x {height:.1f} in figure does not fit a page ({MAX_WIDTH} x {MAX_HEIGHT} in).")
    kwargs.setdefault("layout", "constrained")
    return plt.subplots(nrows, ncols, figsize=(w, height), **kwargs)


# ---------------------------------------------------------------------------------------------------------
# Figures the notebooks share

VERDICT_STYLE = {  # colour, marker, filled, line style: tell verdicts apart without colour too
    "reproduced": (PALETTE[2], "o", True, "-"),
    "contradicted": (PALETTE[3], "X", True, "--"),
    "unresolved": ("0.45", "o", False, ":"),
    "untestable here": ("0.6", "s", False, ":"),  # rests on a positive control the testbed fails
    "calibration": ("0.3", "D", False, "-."),  # measures a control's own effect, not HENet's
    "not run": ("0.6", "_", False, ""),
}
