"""Small-cell suppression helpers (reviewer rendering)."""

from __future__ import annotations

import pandas as pd
import pytest

from rwe.dossier import SUPPRESSED, scrub_text, suppress_small_cells
from rwe.dossier._format import fmt_ci, fmt_int, fmt_p, fmt_pct


def test_counts_below_k_and_their_estimates():
    df = pd.DataFrame({"level": ["a", "b", "c", "d"], "n": [500, 7, 0, 40],
                       "events": [50, 3, 0, 35], "estimate": [0.8, 0.6, float("nan"), 0.9]})
    out = suppress_small_cells(df, 11, counts=["n", "events"], dependent=["estimate"],
                               complements=[("n", "events")])
    assert list(out.attrs["suppressed"]) == [False, True, False, True]
    assert out.loc[0, "n"] == 500 and out.loc[0, "estimate"] == 0.8
    assert out.loc[1, "n"] == "<11" and out.loc[1, "events"] == "<11"
    assert out.loc[1, "estimate"] == SUPPRESSED
    assert out.loc[2, "n"] == 0  # zeros are shown
    # d: 40 rows, 35 events -> 5 non-events: the complement is small
    assert out.loc[3, "n"] == 40 and out.loc[3, "events"] == SUPPRESSED
    assert out.loc[3, "estimate"] == SUPPRESSED
    assert df.loc[1, "n"] == 7  # the input is untouched


def test_secondary_suppression_in_a_partition():
    df = pd.DataFrame({"attr": ["x"] * 3, "n": [5, 30, 400], "share": [0.01, 0.07, 0.92]})
    out = suppress_small_cells(df, 11, counts=["n"], dependent=["share"],
                               secondary_by=[["attr"]])
    assert out.loc[0, "n"] == "<11"
    assert out.loc[1, "n"] == SUPPRESSED and out.loc[1, "share"] == SUPPRESSED
    assert out.loc[2, "n"] == 400


@pytest.mark.parametrize("text, expected", [
    ("cell A (n=6)", "cell A (n<11)"),
    ("cell A (n=60)", "cell A (n=60)"),
    ("American Indian (3), Asian (29)", "American Indian (<11), Asian (29)"),
    ("chi-square(3) = 12.0", "chi-square(3) = 12.0"),
    ("missing for 3/408 rows", "missing for <11/408 rows"),
    ("empty (n=0)", "empty (n=0)"),
    ("X: 0.1% of cohort (n=5; 95% CI 0.0%-0.2%) vs 0.2% of reference, PPR 0.48 (0.21-1.12)",
     "X: [suppressed] of cohort (n<11; 95% CI [suppressed]-[suppressed]) vs [suppressed] of "
     "reference, PPR suppressed"),
])
def test_scrub_text(text, expected):
    assert scrub_text(text, 11) == expected


def test_scrub_figure_labels():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rwe.dossier._suppress import scrub_figure

    fig, ax = plt.subplots()
    ax.set_yticks([0, 1], ["a (n=5)", "b (n=500)"])
    ax.text(0, 0, "7")
    ax.text(1, 1, "70")
    scrub_figure(fig, 11)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a (n<11)", "b (n=500)"]
    assert [t.get_text() for t in ax.texts] == ["<11", "70"]
    plt.close(fig)


def test_formatting():
    assert fmt_int(100000) == "100,000" and fmt_int(None) == "—"
    assert fmt_pct(0.7968) == "79.7%"
    assert fmt_p(0.0001) == "<0.001" and fmt_p(0.0234) == "0.023"
    assert fmt_ci(0.8089, 0.8009, 0.8167).startswith("0.809 <span class='ci'>(0.801–0.817)")
    assert fmt_ci(SUPPRESSED, None, None) == SUPPRESSED
