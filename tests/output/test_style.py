"""The one figure style: print widths, 8-9 pt text, TrueType fonts, series that differ by colour, marker and
line style."""

import matplotlib as mpl
import matplotlib.pyplot as plt
import pytest

from henetlib.output import style


def test_style_and_sizes():
    fig, ax = style.figure("one", 2.0)
    assert tuple(fig.get_size_inches()) == pytest.approx((style.ONE_COLUMN, 2.0))
    assert mpl.rcParams["pdf.fonttype"] == 42 and 8 <= mpl.rcParams["font.size"] <= 9
    # series differ by marker and line style as well as colour
    styles = [style.series_style(i) for i in range(4)]
    assert len({s["marker"] for s in styles}) == 4 and len({str(s["linestyle"]) for s in styles}) == 4
    with pytest.raises(ValueError, match="page"):
        style.figure(9.0, 2.0)
    plt.close("all")


def test_widths_by_name_or_inches():
    for width, inches in (("one", style.ONE_COLUMN), ("two", style.TWO_COLUMN), (5.0, 5.0)):
        fig, _ = style.figure(width, 1.5)
        assert tuple(fig.get_size_inches()) == pytest.approx((inches, 1.5))
        plt.close(fig)
    with pytest.raises(ValueError, match="does not fit a page"):
        style.figure("two", style.MAX_HEIGHT + 0.5)


def test_series_styles_cycle_and_the_axes_follow_them():
    n = len(style.PALETTE)
    assert style.series_style(n) == style.series_style(0)
    assert style.series_style(1)["color"] != style.series_style(0)["color"]
    style.use_style()
    cycle = list(mpl.rcParams["axes.prop_cycle"])
    assert len(cycle) == n and cycle[2] == style.series_style(2)  # plt.plot's defaults are series_style's
    assert set(style.VERDICT_STYLE) == {"reproduced", "contradicted", "unresolved", "untestable here", "calibration",
                                        "not run"}
