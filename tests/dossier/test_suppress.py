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

    fig, (ax, cat) = plt.subplots(1, 2)
    ax.set_yticks([0, 1], ["a (n=5)", "b (n=500)"])  # text labels (FixedFormatter)
    ax.set_xlim(0, 8)  # numeric ticks are left as they are
    ax.text(0, 0, "7")
    ax.text(1, 1, "70")
    cat.bar(["c (n=3)", "d (n=300)"], [1, 2])  # a categorical axis (labels from its units)
    xticks = list(ax.get_xticklabels())
    scrub_figure(fig, 11)
    fig.canvas.draw()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a (n<11)", "b (n=500)"]
    assert list(ax.get_yticks()) == [0, 1]
    assert [t.get_text() for t in ax.get_xticklabels()] == [t.get_text() for t in xticks]
    assert [t.get_text() for t in cat.get_xticklabels()] == ["c (n<11)", "d (n=300)"]
    assert list(cat.get_xticks()) == [0, 1]
    assert [t.get_text() for t in ax.texts] == ["<11", "70"]
    plt.close(fig)


def test_formatting():
    assert fmt_int(100000) == "100,000" and fmt_int(None) == "—"
    assert fmt_pct(0.7968) == "79.7%"
    assert fmt_p(0.0001) == "<0.001" and fmt_p(0.0234) == "0.023"
    assert fmt_ci(0.8089, 0.8009, 0.8167).startswith("0.809 <span class='ci'>(0.801–0.817)")
    assert fmt_ci(SUPPRESSED, None, None) == SUPPRESSED


def test_small_record_is_small_rows_of_one_row():
    from rwe.dossier._suppress import small_record, small_rows

    rows = [{"n": 120, "events": 5}, {"n": 120, "events": 30}, {"n": 8, "events": 0},
            {"n": 40, "events": 35}, {"n": 0, "events": 0}, {"n": None, "events": 3},
            {"n": "<11", "events": 20}, {"events": 50}]
    for r in rows:
        want = bool(small_rows(pd.DataFrame([r]), 11, counts=["n", "events"],
                               complements=[("n", "events")])[0])
        assert small_record(r, 11, counts=["n", "events"],
                            complements=[("n", "events")]) is want, r


def test_tables_from_records_and_from_frames_are_the_same():
    """The plan-only sections render records (no pandas); analysis views pass DataFrames."""
    from rwe.dossier._format import Col, html_table

    rows = [{"g": "sex", "lev": "F", "n": 50094, "est": 0.81, "lo": 0.80, "hi": 0.82,
             "p": 0.0004, "s": "pass"},
            {"g": "sex", "lev": "M", "n": 49906, "est": None, "lo": None, "hi": None,
             "p": 0.2, "s": "fail"},
            {"g": "race", "lev": "<11", "n": SUPPRESSED, "est": SUPPRESSED, "lo": None,
             "hi": None, "p": None, "s": "insufficient data"}]
    cols = [Col("Level", "lev"), Col("n", "n", "int"), Col("Estimate", "est", "ci", low="lo",
                                                           high="hi"),
            Col("p", "p", "p"), Col("Verdict", "s", "status")]
    a = html_table(rows, cols, group="g", caption="c", note="x")
    b = html_table(pd.DataFrame(rows), cols, group="g", caption="c", note="x")
    assert a == b
    assert "50,094" in a and "&lt;0.001" in a and "suppressed" in a and a.count("class='grp'") == 2


def test_shared_panels_label_the_outer_axes_only():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rwe.dossier._notebook import SectionContext

    ctx = SectionContext(name="subgroups", protocol=None, out_dir=None)

    def draw(item, ax):
        ax.plot([0, 1], [0, 1])
        ax.set_xlabel("x")
        ax.set_ylabel("y")

    fig = ctx.panels(draw, list("abcde"), ncols=3, share=True)  # 2 x 3, the last slot empty
    axes = fig.axes
    shown_x = [bool(ax.xaxis.get_tick_params()["labelbottom"]) for ax in axes[:5]]
    shown_y = [bool(ax.yaxis.get_tick_params()["labelleft"]) for ax in axes[:5]]
    # bottom row, and the panel above the empty slot, carry the x labels
    assert shown_x == [False, False, True, True, True]
    assert [ax.get_xlabel() for ax in axes[:5]] == ["", "", "x", "x", "x"]
    assert shown_y == [True, False, False, True, False]
    assert [ax.get_ylabel() for ax in axes[:5]] == ["y", "", "", "y", ""]
    assert not axes[5].get_visible()
    plt.close(fig)
