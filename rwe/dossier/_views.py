"""Reviewer views: HTML fragments rendered from a section's payload (the numbers of
``results.json``), with small-cell suppression applied. Notebooks call them through
:meth:`rwe.dossier.SectionContext.show`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the analysis views build frames (numpy is imported in those views);
    import pandas as pd  # the plan-only sections load neither

from rwe._results import GROUP_SEP, LEVEL_SEP
from rwe.dossier._format import (
    DASH,
    Bound,
    Col,
    RawHTML,
    _missing,
    bullet_list,
    definition_list,
    esc,
    fmt_bound,
    fmt_ci,
    fmt_int,
    html_table,
    verdict_detail,
)
from rwe.dossier._suppress import (
    SUPPRESSED,
    hidden_names,
    reviewer_table,
    scrub_named,
    small_label,
    small_rows,
)

__all__ = ["VIEWS", "render_view", "suppression_note"]

ViewFn = Callable[[dict, int], str]
VIEWS: dict[tuple[str, str], ViewFn] = {}


def view(section: str, name: str):
    def deco(fn: ViewFn) -> ViewFn:
        VIEWS[(section, name)] = fn
        return fn
    return deco


#: Provenance facts a protocol cannot supply yet (shown so a reviewer can ask for them).
NOT_PROVIDED = ("data extraction date", "source version and latency",
                "annotation protocol and reader agreement (PRV-5)",
                "model weights hash (PRV-6)")


def render_view(section: str, name: str, payload: dict, k: int, protocol: Any = None,
                plan: Any = None) -> str:
    """HTML of view ``name`` of ``section`` (``"*"`` views work for every section), from the
    section's result record; ``protocol`` supplies the facts a record does not hold, ``plan``
    (:class:`rwe.dossier._privacy.DisclosurePlan`) the cells hidden from reviewers."""
    fn = VIEWS.get((section, name)) or VIEWS.get(("*", name))
    if fn is None:
        from rwe.exceptions import InvalidParameterError

        names = sorted({n for s, n in VIEWS if s in (section, "*")})
        raise InvalidParameterError(
            f"view={name!r} is unknown for section {section!r}; valid: {', '.join(names)}")
    return fn({**payload, "_protocol": protocol, "_plan": plan}, k)


def suppression_note(k: int) -> str:
    return (f"Counts from 1 to {k - 1} are shown as {esc(small_label(k))} and the estimates that "
            f"depend on them are suppressed; so are the cells from which a suppressed one "
            f"could be worked out by subtraction from a total (small-cell rule with "
            f"complementary suppression, protocol report.small_cell_k = {k}; see the index "
            f"page).")


def _frame(records: Any) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(records or [])


def _numeric(values: Any) -> Any:
    import pandas as pd

    return pd.to_numeric(values, errors="coerce")


def _note_if(df: pd.DataFrame, k: int, extra: str = "") -> str | None:
    import numpy as np

    hidden = df.attrs.get("suppressed")
    parts = [extra] if extra else []
    if hidden is not None and bool(np.any(hidden)):
        parts.append(suppression_note(k))
    return " ".join(parts) or None


# =============================================================================== common
@view("*", "verdicts")
def _verdicts(payload: dict, k: int) -> str:
    rows = list(payload.get("verdicts") or [])
    if isinstance(payload.get("decision"), dict):  # a model update's own verdict comes first
        rows.insert(0, payload["decision"])
    if not rows:
        return "<p class='muted'>This section has no pre-specified goal or criterion.</p>"
    rows = [{**r, "detail": verdict_detail(r, k),
             "criterion": RawHTML(esc(r.get("criterion")) + (
                 f"<div class='desc'>{esc(r['description'])}</div>"
                 if isinstance(r.get("description"), str) and r["description"] else ""))}
            for r in rows]
    return html_table(rows, [Col("Goal or criterion", "criterion", "html"),
                           Col("Verdict", "status", "status"), Col("Detail", "detail")],
                      css="verdicts")


@view("*", "findings")
def _findings(payload: dict, k: int) -> str:
    from rwe.dossier._privacy import finding_for_reviewers

    plan = payload.get("_plan")
    verdicts = {v["id"]: v for v in payload.get("verdicts") or []}
    return bullet_list(finding_for_reviewers(f, k, plan, verdicts)["text"]
                       for f in payload.get("findings") or [])


@view("*", "notes")
def _notes(payload: dict, k: int) -> str:
    notes = payload.get("notes") or []
    if not notes:
        return ""
    names = hidden_names(payload.get("_plan"))
    return "<div class='notes'><b>Methodological notes</b>" + bullet_list(
        scrub_named(str(n), k, names) for n in notes) + "</div>"


@view("*", "statement")
def _statement(payload: dict, k: int) -> str:
    if not payload.get("statement"):
        return ""
    return (f"<div class='callout noteval'><b>Not evaluated.</b> "
            f"{esc(payload.get('statement', ''))}</div>")


# =============================================================================== representativeness
#: The note of a representativeness table that prints some counts as bounds (a merge's:
#: :func:`rwe.federation._withheld._bound_columns`).
WITHHELD_NOTE = ("At least (at most): some sites withheld counts of the level by disclosure "
                 "control before release (the federation page lists the levels, the sites and "
                 "how many rows were not counted), so its released count is a lower bound (a "
                 "shortfall an upper bound); a check on the level is judged only where it reads "
                 "the same at both ends of its bounds, else it is not evaluable.")


#: The note of a "(missing)" equipment count that is an upper bound (``values_withheld_at``).
MISSING_RECODED_NOTE = ("(missing), at most: sites released the {what} values they withheld "
                        "by disclosure control as missing, so the rows with no {what} recorded "
                        "are at most this many; where a site also withheld rows of the level, "
                        "the count is neither bound: not determined.")
#: A count that is neither bound (rows of the level withheld, and values released as missing).
UNDETERMINED = Bound("not determined (withheld)")


def _site_count(v: Any, lower: bool, upper: bool) -> Any:
    """A count of the sites table as printed: a lower bound where sites withheld rows of its
    level, an upper bound where they released withheld values as missing, not determined
    where both (a suppressed or missing count stays as it is)."""
    if isinstance(v, str) or _missing(v):
        return v
    if lower and upper:
        return UNDETERMINED
    return fmt_bound(v) if lower else fmt_bound(v, "at most") if upper else v


def _site_bounds(sup: pd.DataFrame, df: pd.DataFrame) -> tuple[pd.DataFrame, bool, bool]:
    """``sup`` (the reviewer table of the sites rows ``df``) with its ``n`` printed by
    :func:`_site_count`; and whether any count is a lower, any an upper bound."""
    lower = _withheld_mask(df)
    upper = _withheld_mask(df, "values_withheld_at")
    j = sup.columns.get_loc("n")
    for pos in (lower | upper).nonzero()[0]:
        sup.iat[pos, j] = _site_count(sup.iat[pos, j], bool(lower[pos]), bool(upper[pos]))
    return sup, bool(lower.any()), bool(upper.any())


def _withheld_mask(df: pd.DataFrame, column: str = "withheld_at") -> Any:
    """Rows of a merge's table whose level some site withheld counts of (``column`` names
    the sites; absent from a table of rows)."""
    import numpy as np

    if column not in df.columns:
        return np.zeros(len(df), dtype=bool)
    return np.array([isinstance(x, str) and bool(x) for x in df[column]], dtype=bool)


def _print_bounds(sup: pd.DataFrame, mask: Any, lower: tuple[str, ...] = (),
                  upper: tuple[str, ...] = ()) -> pd.DataFrame:
    """``sup`` (a reviewer table) with the counts of the ``mask`` rows printed as bounds:
    ``lower`` columns "at least", ``upper`` columns "at most" (a suppressed count stays
    suppressed)."""
    import numpy as np

    for pos in np.flatnonzero(mask):
        for cols, side in ((lower, "at least"), (upper, "at most")):
            for c in cols:
                j = sup.columns.get_loc(c)
                sup.iat[pos, j] = fmt_bound(sup.iat[pos, j], side)
    return sup


def _count_html(v: Any) -> str:
    """A count in a matrix cell: a bound (``at least 54``) as text, a suppressed or small-cell
    label marked as such, a number with thousands separators."""
    if isinstance(v, Bound):
        return esc(v)
    return f"<span class='sup'>{esc(v)}</span>" if isinstance(v, str) else fmt_int(v)


def _verified_text(meta: dict, attributes: list[str] | tuple[str, ...] = ()) -> str | None:
    """"yes" / "NO" for a reference whose figures are all / none verified; per attribute
    ("NO for sex, age; yes for race") when its ``verified`` column differs between attributes.
    Each attribute's status is its own ``verified:<attribute>`` entry, else the header."""
    word = {"true": "yes", "yes": "yes", "false": "NO", "no": "NO"}
    head = word.get(str(meta.get("verified")).strip().lower())
    names = list(dict.fromkeys([*attributes, *(k.split(":", 1)[1] for k in meta
                                               if k.startswith("verified:"))]))
    per = {a: word.get(str(meta.get(f"verified:{a}", meta.get("verified"))).strip().lower())
           for a in names}
    if len(set(per.values())) <= 1:
        return next(iter(per.values())) if per else head
    groups = {w: [a for a, x in per.items() if x == w] for w in ("NO", "yes", None)}
    return "; ".join(f"{w or 'not stated'} for {', '.join(a)}" for w, a in groups.items() if a)


@view("representativeness", "reference")
def _rep_reference(p: dict, k: int) -> str:
    r = p.get("reference") or {}
    meta = r.get("metadata") or {}
    par = p.get("parameters") or {}
    ages = meta.get("universe_ages")
    min_age = par.get("reference_min_age")
    return definition_list([
        ("Cohort rows", fmt_int(p.get("n"))),
        ("Reference population", meta.get("title") or r.get("name")),
        ("Reference name / version", f"{r.get('name')} / {meta.get('version') or 'n/a'}"),
        ("Universe", meta.get("universe")),
        ("Ages the reference shares cover", (f"{ages}" + (
            f"; restricted to the intended use ({min_age:g}+) where its age groups allow"
            if min_age is not None else "")) if ages else None),
        ("Source", meta.get("source") or r.get("source")),
        ("Verified against the published tables",
         _verified_text(meta, list(r.get("shares") or ()))),
        ("Verification", meta.get("verification")),
        ("Attributes compared", p.get("attributes")),
        ("PPR band (adequate)", f"{par['ppr_band'][0]:g} to {par['ppr_band'][1]:g}"),
        ("SMD threshold", f"{par['smd_threshold']:g}"),
        ("Interval", f"{par['confidence_level']:.0%} Wilson"),
    ])


@view("representativeness", "shares")
def _rep_shares(p: dict, k: int) -> str:
    df = _frame(p.get("shares"))
    if not len(df):
        return "<p class='muted'>No shares computed.</p>"
    sup = reviewer_table(df, p["_plan"], k, key=lambda r: (r["attribute"], r["category"]),
                         counts=["n"], dependent=["cohort_share", "ci_low", "ci_high",
                                                  "difference", "ppr", "ppr_low", "ppr_high"])
    lvl = df["ci_level"].dropna()
    lvl = f"{float(lvl.iloc[0]):.0%}" if len(lvl) else ""
    cols = [Col("Category", "category"), Col("n", "n", "int"),
            Col(f"Cohort share ({lvl} CI)", "cohort_share", "pctci", low="ci_low",
                high="ci_high"),
            Col("Reference share", "reference_share", "pct"),
            Col("PPR (CI)", "ppr", "ci", digits=2, low="ppr_low", high="ppr_high"),
            Col("Flag", "flag")]
    note = "PPR = cohort share / reference share; flagged outside the protocol's band."
    partial = _withheld_mask(df)
    sup = _print_bounds(sup, partial, lower=("n",))
    bounded = False
    if "ppr_bound_low" in df.columns:  # the share's bounds where sites withheld values
        j = sup.columns.get_loc("flag")
        for pos, (lo, hi) in enumerate(zip(df["ppr_bound_low"], df["ppr_bound_high"],
                                           strict=True)):
            if lo is None or hi is None or lo != lo or hi != hi or isinstance(
                    sup["ppr"].iat[pos], str):
                continue
            sup.iat[pos, j] = f"{sup.iat[pos, j]}; PPR {float(lo):.2f} to {float(hi):.2f} " \
                              "at the bounds"
            bounded = True
    if partial.any() or bounded:
        note += (" Where sites withheld values of an attribute, the shares and PPRs shown are "
                 "those of the released counts; the flag is judged at both ends of the PPR's "
                 "bounds (shown beside it). " + WITHHELD_NOTE)
    return html_table(sup, cols, group="attribute", note=_note_if(sup, k, note), css="flags")


@view("representativeness", "table1")
def _rep_table1(p: dict, k: int) -> str:
    """Table 1: one table per stratification (overall with site, overall with equipment),
    tableone's cells, a category count of 1..k-1 (or hidden by the plan) suppressed."""
    t1 = p.get("table1")
    if not t1:
        return "<p class='muted'>Table 1 was not computed.</p>"
    plan = p.get("_plan")
    table = _frame(t1["table"])
    counts = {(r["by"], str(r["stratum"]), r["variable"], str(r["level"])): r["n"]
              for r in t1["counts"]}
    label = small_label(k)

    def hidden(by: str, stratum: str, var: str, level: str) -> str | None:
        lev = "missing" if level in ("None", "nan") else level
        n = counts.get((by, stratum, var, lev))
        if var == "n" or n is None:
            n_strat = counts.get((by, stratum, "n", ""))
            small = n_strat is not None and 1 <= n_strat < k
            if small or (plan is not None and by != "overall" and plan.hides(by, stratum)):
                return label if small else SUPPRESSED
            return None
        if 1 <= n < k:
            return label
        if plan is not None:
            key = (var, lev) if by == "overall" else (f"{by}{GROUP_SEP}{var}",
                                                      f"{stratum}{LEVEL_SEP}{lev}")
            if plan.hides(*key):
                return SUPPRESSED
        return None

    out = []
    strata = t1.get("strata") or {}
    for role, col in strata.items() or [("overall", None)]:
        cols = ["Overall"] + [s for s in dict.fromkeys(table.loc[table["by"] == col, "stratum"])]
        rows = []
        keys = table[table["by"] == "overall"][["variable", "statistic", "level"]]
        seen: set[str] = set()
        for var, stat, level in keys.drop_duplicates().itertuples(index=False):
            if level and var not in seen:  # a categorical variable: its heading row first
                seen.add(var)
                rows.append({"name": f"{var}, {stat}", "variable": var, "head": True,
                             **dict.fromkeys(cols, "")})
            row = {"name": (f"{var}, {stat}" if not level else f"\u2003{level}")
                   if stat != "n" else "n", "variable": var}
            for s in cols:
                by = "overall" if s == "Overall" else col
                m = table[(table["by"] == by) & (table["stratum"] == s) & (table["variable"] == var)
                          & (table["statistic"] == stat) & (table["level"] == level)]
                v = m["value"].iloc[0] if len(m) else ""
                h = hidden(by, s, var, level) if stat in ("n", "n (%)") else (
                    hidden(by, s, "n", "") if by != "overall" else None)
                row[s] = h if h is not None else v
            rows.append(row)
        html_rows = "".join(
            (f"<tr class='grp'><th colspan='{len(cols) + 1}'>{esc(r['name'])}</th></tr>"
             if r.get("head") else None) or
            "<tr>" + f"<th class='txt'>{esc(r['name'])}</th>" + "".join(
                "<td class='num'>" + (f"<span class='sup'>{esc(r[s])}</span>"
                                       if r[s] in (label, SUPPRESSED) else esc(r[s]))
                + "</td>" for s in cols) + "</tr>" for r in rows)
        head = "".join(f"<th class='num'>{esc(s)}</th>" for s in cols)
        out.append(f"<table class='rwe matrix table1'><caption>Table 1 by {esc(role)} "
                   f"(<code>{esc(col)}</code>)</caption><thead><tr><th></th>{head}</tr>"
                   f"</thead><tbody>{html_rows}</tbody></table>")
    nonnormal = ", ".join(t1.get("nonnormal") or []) or "none"
    out.append(f"<p class='tnote'>tableone's table (Pollard et al., JAMIA Open 2018): its "
               f"cells, formats and formulas, computed from category codes (rwe's tests "
               f"check every cell against tableone itself). "
               f"n (%) of the stratum's rows, missing values as their own row (None); "
               f"mean (SD), or median [Q1,Q3] for skewed variables ({esc(nonnormal)}); the "
               f"outcome ({esc(t1.get('outcome'))}) row 1 is the prevalence. "
               + suppression_note(k) + "</p>")
    return "\n".join(out)


@view("representativeness", "tests")
def _rep_tests(p: dict, k: int) -> str:
    df = _frame(p.get("tests"))
    df = df[df["attribute"] != "overall"] if len(df) else df
    return html_table(df, [Col("Attribute", "attribute"), Col("n", "n", "int"),
                           Col("Categories", "k", "int"), Col("Chi-square", "chi2", "num", 1),
                           Col("df", "df", "int"), Col("p", "pvalue", "p"),
                           Col("Total variation distance", "tvd", "num")],
                      note="Chi-square goodness of fit of the cohort counts against the "
                           "reference shares; TVD = half the sum of absolute share differences.")


@view("representativeness", "smd")
def _rep_smd(p: dict, k: int) -> str:
    import numpy as np

    df = _frame(p.get("smd"))
    if len(df):
        df = df[df["comparison"] != "reference shares"].copy()
    if not len(df):
        return "<p class='muted'>No population rows to compare covariates with.</p>"
    cat = df["kind"].astype(str).str.contains("categorical")
    df["count_a"] = np.where(cat, np.round(df["mean_a"].astype(float) * df["n_a"].astype(float)),
                             np.nan)
    df["count_b"] = np.where(cat, np.round(df["mean_b"].astype(float)
                                           * _numeric(df["n_b"])), np.nan)
    plan = p["_plan"]
    small = small_rows(df, k, counts=["count_a", "count_b"])
    if plan is not None:
        small |= np.array([cat_ and (plan.hides(r["covariate"], r["level"]) or plan.hides(
            f"comparison rows: {r['covariate']}", r["level"]))
            for cat_, r in zip(cat, df.to_dict("records"), strict=True)], dtype=bool)
    out = df.astype(object)
    for c in ("mean_a", "mean_b", "sd_a", "sd_b", "smd"):
        out.loc[small, c] = SUPPRESSED
    out["level"] = out["level"].where(out["level"].notna(), "")
    out.attrs["suppressed"] = small
    comp = str(df["comparison"].iloc[0])
    note = f"Standardised mean differences (Austin 2009), cohort vs {esc(comp)}."
    partial = _withheld_mask(df)  # a merge's: sites withheld a contribution (not judged)
    if partial.any():
        j = out.columns.get_loc("flag")
        for pos in np.flatnonzero(partial):
            out.iat[pos, j] = f"not evaluable: withheld at {df['withheld_at'].iat[pos]}"
        note += (" Not evaluable: sites withheld counts of the level (or of the attribute's "
                 "levels) or values of the covariate by disclosure control, so the shares and "
                 "means shown are those of the released counts and the difference is not "
                 "judged.")
    return html_table(out, [Col("Covariate", "covariate"), Col("Level", "level"),
                            Col("Cohort mean / share", "mean_a", "num"),
                            Col("Comparison mean / share", "mean_b", "num"),
                            Col("SMD", "smd", "num", 2), Col("Flag", "flag")],
                      note=_note_if(out, k, note))


@view("representativeness", "tipton")
def _rep_tipton(p: dict, k: int) -> str:
    t = p.get("tipton")
    if not t:
        return (f"<p>Tipton's generalizability index was not computed: "
                f"{esc(p.get('tipton_reason') or 'no reason given')}.</p>")
    return definition_list([
        ("Generalizability index B", f"{t['b']:.3f} ({t['interpretation']})"),
        ("Cohort rows used", fmt_int(t.get("n_sample"))),
        ("Comparison rows used", fmt_int(t.get("n_population"))),
        ("Covariates", t.get("covariates")),
        ("Model", t.get("model")),
        ("Notes", "; ".join(t.get("notes") or []) or None),
    ]) + ("<p class='tnote'>B ranges from 0 to 1; Tipton (2014) reads B >= 0.9 as very high, "
          "0.8-0.9 high, 0.5-0.8 medium and below 0.5 low generalizability.</p>")


@view("representativeness", "coverage")
def _rep_coverage(p: dict, k: int) -> str:
    import numpy as np

    df = _frame(p.get("coverage"))
    if not len(df):
        return "<p class='muted'>No intersection analysed.</p>"
    min_n = (p.get("parameters") or {}).get("min_n", 30)
    sup = reviewer_table(df, p["_plan"], k, key=lambda r: (r["intersection"], r["cell"]),
                         counts=["n", "n_positive"], dependent=["share"],
                         complements=[("n", "n_positive")])
    partial = _withheld_mask(df)
    sup = _print_bounds(sup, partial, lower=("n",))
    html = []
    for inter, idx in df.groupby("intersection", sort=False).groups.items():
        d = df.loc[idx]
        s = sup.loc[idx]
        rows = list(dict.fromkeys(d["row_level"]))
        cols = list(dict.fromkeys(d["col_level"]))
        a, b = str(inter).split(GROUP_SEP, 1)
        head = "".join(f"<th class='num'>{esc(c)}</th>" for c in cols)
        body = []
        for r in rows:
            cells = []
            for c in cols:
                m = (d["row_level"] == r) & (d["col_level"] == c)
                if not m.any():
                    cells.append("<td class='num'>—</td>")
                    continue
                j = m.to_numpy().nonzero()[0][0]
                shown = s["n"].iloc[j]
                raw = d["n"].iloc[j]
                cls = "num low" if raw < min_n else "num"
                cells.append(f"<td class='{cls}'>{_count_html(shown)}</td>")
            body.append(f"<tr><th class='txt'>{esc(r)}</th>{''.join(cells)}</tr>")
        html.append(f"<table class='rwe matrix'><caption>{esc(inter)}: rows per cell "
                    f"(rows: {esc(a)}, columns: {esc(b)})</caption><thead><tr><th></th>{head}"
                    f"</tr></thead><tbody>{''.join(body)}</tbody></table>")
    html.append(f"<p class='tnote'>Shaded cells have fewer than {min_n} rows (subgroups.min_n). "
                + (WITHHELD_NOTE + " " if partial.any() else "")
                + (suppression_note(k) if np.any(sup.attrs["suppressed"]) else "") + "</p>")
    return "\n".join(html)


@view("representativeness", "adequacy")
def _rep_adequacy(p: dict, k: int) -> str:
    df = _frame(p.get("adequacy"))
    par = p.get("parameters") or {}
    if not len(df) or par.get("target_half_width") is None:
        return "<p class='muted'>No target half-width pre-specified: adequacy not assessed.</p>"
    single = df[~df["grouping"].str.contains(GROUP_SEP, regex=False)]
    inter = df[df["grouping"].str.contains(GROUP_SEP, regex=False)]
    short = single[~single["reached"].fillna(True).astype(bool)]
    req = int(df["required"].iloc[0])
    basis = str(df["basis"].iloc[0])
    partial_short = int(_withheld_mask(short).sum())
    intro = (f"<p>A {par['confidence_level']:.0%} interval of half-width "
             f"{par['target_half_width']:g} at an assumed value of {par['assumed_value']:g} "
             f"needs {req:,} {esc(basis)} per subgroup. {len(single) - len(short)} of "
             f"{len(single)} subgroups reach it; {int((~inter['reached'].fillna(True).astype(bool)).sum())} "
             f"of {len(inter)} intersectional cells do not"
             + (f" on their released counts ({partial_short} of the subgroups below it with "
                "counts withheld at sites: their counts are lower bounds)" if partial_short
                else "") + ".</p>")
    if not len(short):
        return intro
    sup = reviewer_table(short, p["_plan"], k, key=lambda r: (r["grouping"], r["subgroup"]),
                         counts=["n", "n_positive"], complements=[("n", "n_positive")],
                         dependent=["shortfall"])
    partial = _withheld_mask(short)
    sup = _print_bounds(sup, partial, lower=("n", "n_positive"), upper=("shortfall",))
    return intro + html_table(sup, [Col("Attribute", "grouping"), Col("Subgroup", "subgroup"),
                                     Col("n", "n", "int"), Col("Positives", "n_positive", "int"),
                                     Col("Required", "required", "int"),
                                     Col("Shortfall", "shortfall", "int")],
                              caption="Subgroups below the required size",
                              note=_note_if(sup, k, WITHHELD_NOTE if partial.any() else ""))


@view("representativeness", "sites")
def _rep_sites(p: dict, k: int) -> str:
    import numpy as np

    df = _frame(p.get("sites"))
    if not len(df):
        return "<p class='muted'>No site or equipment column.</p>"
    roles = p["_protocol"].data.columns if p.get("_protocol") is not None else None
    site_col = getattr(roles, "site", None) or "site"
    eq_col = getattr(roles, "equipment", None) or "equipment"
    plan = p["_plan"]
    sxe = df[df["level"] == "site x equipment"]
    if len(sxe):
        sup = reviewer_table(sxe, plan, k, key=lambda r: (
            f"{site_col}{GROUP_SEP}{eq_col}", f"{r['site']}{LEVEL_SEP}{r['equipment']}"),
            counts=["n"], dependent=["share"])
        sup, bounded, at_most = _site_bounds(sup, sxe)
        sites = list(dict.fromkeys(sxe["site"]))
        eqs = list(dict.fromkeys(sxe["equipment"]))
        tot_site = df[df["level"] == "site"].set_index("site")["n"].astype(object)
        tot_eq = df[df["level"] == "equipment"].set_index("equipment")["n"].astype(object)
        for tot, col, level in ((tot_site, site_col, "site"), (tot_eq, eq_col, "equipment")):
            rows = df[df["level"] == level]
            bound = dict(zip(rows[level], _withheld_mask(rows), strict=True))
            upper = dict(zip(rows[level], _withheld_mask(rows, "values_withheld_at"),
                             strict=True))
            bounded |= any(bound.values())
            at_most |= any(upper.values())
            for lv in list(tot.index):
                v = tot[lv]
                if (plan is not None and plan.hides(col, lv)) or 1 <= float(v) < k:
                    tot[lv] = small_label(k) if 1 <= float(v) < k else SUPPRESSED
                else:
                    tot[lv] = _site_count(v, bool(bound.get(lv)), bool(upper.get(lv)))
        head = "".join(f"<th class='num'>{esc(e)}</th>" for e in eqs) + "<th class='num'>all</th>"
        body = []
        for s in sites:
            cells = []
            for e in eqs:
                m = ((sxe["site"] == s) & (sxe["equipment"] == e)).to_numpy()
                v = sup["n"].to_numpy()[m][0] if m.any() else 0
                cells.append(f"<td class='num'>{_count_html(v)}</td>")
            body.append(f"<tr><th class='txt'>{esc(s)}</th>{''.join(cells)}"
                        f"<td class='num'><b>{fmt_int(tot_site.get(s))}</b></td></tr>")
        body.append("<tr class='total'><th class='txt'>all</th>" + "".join(
            f"<td class='num'><b>{fmt_int(tot_eq.get(e))}</b></td>" for e in eqs)
            + f"<td class='num'><b>{fmt_int(p.get('n'))}</b></td></tr>")
        return (f"<table class='rwe matrix'><caption>Rows per site (rows) and equipment "
                f"(columns)</caption><thead><tr><th></th>{head}</tr></thead><tbody>"
                f"{''.join(body)}</tbody></table>"
                + (f"<p class='tnote'>{WITHHELD_NOTE}</p>" if bounded else "")
                + (f"<p class='tnote'>{MISSING_RECODED_NOTE.format(what=esc(eq_col))}</p>"
                   if at_most else "")
                + (f"<p class='tnote'>{suppression_note(k)}</p>"
                   if np.any(sup.attrs["suppressed"]) else ""))
    d = df.copy()
    d["name"] = d["site"].where(d["site"].notna(), d["equipment"])
    sup = reviewer_table(d, plan, k, key=lambda r: (
        site_col if r["level"] == "site" else eq_col, r["name"]), counts=["n"],
        dependent=["share"])
    sup, bounded, at_most = _site_bounds(sup, d)
    notes = " ".join(([WITHHELD_NOTE] if bounded else [])
                     + ([MISSING_RECODED_NOTE.format(what=esc(eq_col))] if at_most else []))
    return html_table(sup, [Col("Level", "name"), Col("n", "n", "int"),
                            Col("Share", "share", "pct")], group="level",
                      note=_note_if(sup, k, notes))


@view("representativeness", "missingness")
def _rep_missingness(p: dict, k: int) -> str:
    import numpy as np

    df = _frame(p.get("missingness"))
    if not len(df):
        return "<p class='muted'>No missingness computed.</p>"
    thr = (p.get("parameters") or {}).get("missingness_threshold", 0.2)
    overall = df[df["grouping"] == "(all)"]
    flagged = df["flag"].astype(bool)
    sub = df[(df["grouping"] != "(all)") & flagged]
    maybe = 0  # a merge's subgroups under the threshold whose bounds reach it
    if "fraction_high" in df.columns:
        high = _numeric(df["fraction_high"])
        maybe = int(((df["grouping"] != "(all)") & ~flagged & high.notna()
                     & (high >= thr)).sum())
    cols = [Col("Variable", "variable"), Col("n", "n", "int"), Col("Missing", "n_missing", "int"),
            Col("Missing %", "fraction", "pct")]
    plan = p["_plan"]
    bounded = False

    def table(frame):
        nonlocal bounded
        size = reviewer_table(frame, plan, k, key=lambda r: (r["grouping"], r["subgroup"]),
                              counts=["n", "n_missing"], complements=[("n", "n_missing")],
                              dependent=["fraction"])
        miss = np.array([plan is not None and plan.hides(r["grouping"], r["subgroup"],
                                                         f"missing={r['variable']}")
                         for r in frame.to_dict("records")], dtype=bool)
        for pos in np.flatnonzero(miss & ~size.attrs["suppressed"]):
            v = float(frame["n_missing"].iloc[pos])
            size.iat[pos, size.columns.get_loc("n_missing")] = (
                small_label(k) if 1 <= v < k else SUPPRESSED)
            size.iat[pos, size.columns.get_loc("fraction")] = SUPPRESSED
        size.attrs["suppressed"] = size.attrs["suppressed"] | miss
        # a merge's bounds (rwe.federation._withheld): the level's rows at least the released
        # ones, its genuine missing count and fraction between the bounds
        size = _print_bounds(size, _withheld_mask(frame), lower=("n",))
        if "fraction_low" in frame.columns:
            jm, jf = size.columns.get_loc("n_missing"), size.columns.get_loc("fraction")
            for pos, r in enumerate(frame.to_dict("records")):
                lo, hi = r.get("fraction_low"), r.get("fraction_high")
                if lo is None or hi is None or lo != lo or hi != hi:
                    continue
                bounded = True
                m, low, high = (float(r[c]) for c in ("n_missing", "n_missing_low",
                                                       "n_missing_high"))
                if not isinstance(size.iat[pos, jm], str):
                    size.iat[pos, jm] = (fmt_bound(m) if low == m else
                                         fmt_bound(m, "at most") if high == m else
                                         Bound(f"{fmt_int(low)} to {fmt_int(high)}"))
                if not isinstance(size.iat[pos, jf], str):
                    size.iat[pos, jf] = Bound(f"{100 * float(lo):.1f}% to "
                                              f"{100 * float(hi):.1f}%")
        return size

    note = ("Where sites withheld counts of a level or values of a variable (disclosure "
            "control), its missing count and fraction are shown as the bounds of the genuine "
            "ones (a withheld value counts as missing in the released tables). ")
    sup = table(overall)
    html = html_table(sup, cols, caption="Missing values overall", note=_note_if(
        sup, k, note + WITHHELD_NOTE if bounded else ""))
    if len(sub):
        bounded = False
        s2 = table(sub)
        html += html_table(s2, [Col("Variable", "variable"), Col("Subgroup of", "grouping"),
                                Col("Subgroup", "subgroup"), *cols[1:]],
                           caption=f"Subgroups with at least {thr:.0%} missing"
                           + (" in the released counts" if bounded else ""),
                           note=_note_if(s2, k, note + WITHHELD_NOTE if bounded else ""))
    else:
        html += f"<p>No subgroup has {thr:.0%} or more missing values for any variable.</p>"
    if maybe:
        html += (f"<p>{maybe} further variable-subgroup pair(s) have under {thr:.0%} missing in "
                 f"the released counts but may have {thr:.0%} or more, by the bounds the "
                 "withheld counts and values leave: their missing-value checks are not evaluable "
                 "(see the verdict above).</p>")
    return html


# =============================================================================== subgroups
_METRIC_LABELS = {"sensitivity": "Sensitivity", "specificity": "Specificity", "ppv": "PPV",
                  "npv": "NPV", "auroc": "AUROC", "brier": "Brier score",
                  "calibration_slope": "Calibration slope",
                  "calibration_intercept": "Calibration intercept"}


def _mlabel(m: str) -> str:
    return _METRIC_LABELS.get(m, m.replace("_", " "))


@view("subgroups", "settings")
def _sub_settings(p: dict, k: int) -> str:
    s = p.get("settings") or {}
    boot = (f"{s.get('n_boot')} replicates, {s.get('bootstrap')}" if s.get("ci_method")
            not in (None, "analytic") else "not used (analytic intervals)")
    return definition_list([
        ("Model version", s.get("version")), ("Rows", fmt_int(s.get("n"))),
        ("Action threshold", s.get("threshold")),
        ("Confidence level", f"{s.get('confidence_level', 0.95):.0%}"),
        ("Intervals", f"{s.get('ci_method')}; proportions: {s.get('proportion_interval')}"),
        ("Bootstrap", boot),
        ("Minimum cell size", f"n >= {s.get('min_n')}, events >= {s.get('min_events')}"),
        ("Multiplicity", s.get("multiplicity")),
        ("Groupings", s.get("groupings")),
    ])


@view("subgroups", "overall")
def _sub_overall(p: dict, k: int) -> str:
    t = _frame(p.get("table"))
    ov = t[t["group"] == "overall"]
    if not len(ov):
        return ""
    lvl = f"{float(ov['ci_level'].iloc[0]):.0%}"
    ov = ov.assign(label=[_mlabel(m) for m in ov["metric"]])
    return html_table(ov, [Col("Metric", "label"), Col(f"Estimate ({lvl} CI)", "estimate", "ci",
                                                       low="ci_low", high="ci_high"),
                           Col("Interval method", "ci_method"), Col("n", "n", "int"),
                           Col("Events", "events", "int")], css="overall")


def _hide_threshold(frame: pd.DataFrame, plan: Any, metric_of: Any, cols_of: Any) -> Any:
    """Suppress, in place, the threshold-metric estimates of the cells whose confusion counts
    the plan hides; returns the mask of rows touched."""
    import numpy as np

    from rwe.dossier._privacy import THRESHOLD, threshold_metrics

    mask = np.zeros(len(frame), dtype=bool)
    if plan is None:
        return mask
    thr = threshold_metrics()
    for pos, r in enumerate(frame.to_dict("records")):
        if not plan.hides(r["group"], r["level"], THRESHOLD):
            continue
        for m in metric_of(r):
            if m in thr:
                for c in cols_of(m):
                    frame.iat[pos, frame.columns.get_loc(c)] = SUPPRESSED
                mask[pos] = True
    return mask


def _pivot_performance(t: pd.DataFrame, metrics: list[str], k: int, plan: Any = None) -> str:
    import numpy as np

    # a cell that is not usable evidence carries its reason as the table's dagger note
    t = t.assign(flags=np.where(t["status"] == "ok", None, t["reason"].fillna(t["status"])))
    cells = t[["group", "level", "n", "events"]].drop_duplicates(["group", "level"])
    wide = cells.copy()
    for m in metrics:
        d = t[t["metric"] == m].set_index(["group", "level"])
        for part in ("estimate", "ci_low", "ci_high", "flags"):
            wide[f"{m}:{part}"] = [d[part].get((g, lv)) if (g, lv) in d.index else None
                                   for g, lv in zip(cells["group"], cells["level"], strict=True)]
    dep = [c for c in wide.columns if ":" in c and not c.endswith(":flags")]
    sup = reviewer_table(wide.reset_index(drop=True), plan, k,
                         key=lambda r: (r["group"], r["level"]), counts=["n", "events"],
                         complements=[("n", "events")], dependent=dep)
    sup.attrs["suppressed"] = sup.attrs["suppressed"] | _hide_threshold(
        sup, plan, lambda r: metrics,
        lambda m: [f"{m}:estimate", f"{m}:ci_low", f"{m}:ci_high"])
    for m in metrics:
        flags = sup[f"{m}:flags"]
        sup[f"{m}:estimate"] = [
            (e if isinstance(e, str) or not isinstance(f, str) else RawHTML(
                fmt_ci(e, lo, hi) + f"<span class='flag' title='{esc(f)}'>†</span>"))
            for e, lo, hi, f in zip(sup[f"{m}:estimate"], sup[f"{m}:ci_low"],
                                    sup[f"{m}:ci_high"], flags, strict=True)]
    sup["cell"] = [("all" if g == "overall" else lv) for g, lv in zip(sup["group"], sup["level"],
                                                                      strict=True)]
    cols = [Col("Subgroup", "cell"), Col("n", "n", "int"), Col("Events", "events", "int")]
    for m in metrics:
        cols.append(_EstCol(_mlabel(m), f"{m}:estimate", "ci", low=f"{m}:ci_low",
                            high=f"{m}:ci_high"))
    return html_table(sup, cols, group="group", css="perf"), sup.attrs["suppressed"]


class _EstCol(Col):
    def render(self, row):  # a flagged estimate arrives pre-rendered
        v = row.get(self.key)
        if isinstance(v, RawHTML):
            return str(v)
        return super().render(row)


@view("subgroups", "performance")
def _sub_performance(p: dict, k: int) -> str:
    import numpy as np

    t = _frame(p.get("table"))
    if not len(t):
        return ""
    metrics = list(dict.fromkeys(t["metric"]))
    first = [m for m in metrics if m in ("sensitivity", "specificity", "ppv", "npv")]
    rest = [m for m in metrics if m not in first]
    s = p.get("settings") or {}
    out, hidden = [], False
    for title, ms in ((f"Classification at threshold {s.get('threshold')}", first),
                      ("Discrimination and calibration", rest)):
        if ms:
            html, mask = _pivot_performance(t, ms, k, p.get("_plan"))
            hidden |= bool(np.any(mask))
            out.append(f"<h4>{esc(title)}</h4>" + html)
    lvl = f"{float(t['ci_level'].iloc[0]):.0%}"
    note = (f"Estimates with {lvl} confidence intervals. † below the minimum cell size "
            f"(n >= {s.get('min_n')}, events >= {s.get('min_events')}) or degenerate: shown, "
            "not judged.")
    if hidden:
        note += " " + suppression_note(k)
    return "\n".join(out) + f"<p class='tnote'>{note}</p>"


@view("subgroups", "goals")
def _sub_goals(p: dict, k: int) -> str:
    import numpy as np

    g = _frame(p.get("goals"))
    if not len(g):
        return "<p class='muted'>No performance goal pre-specified.</p>"
    g["cell"] = ["overall" if a == "overall" else f"{a} = {b}" for a, b in
                 zip(g["group"], g["level"], strict=True)]
    g["state"] = g["status"].fillna("not_evaluated")
    sup = reviewer_table(g, p.get("_plan"), k, key=lambda r: (r["group"], r["level"]),
                         counts=["n", "events"], complements=[("n", "events")],
                         dependent=["estimate", "bound"])
    sup.attrs["suppressed"] = sup.attrs["suppressed"] | _hide_threshold(
        sup, p.get("_plan"), lambda r: [r["metric"]], lambda m: ["estimate", "bound"])
    cols = [Col("Cell", "cell"), Col("n", "n", "int"), Col("Events", "events", "int"),
            Col("Estimate", "estimate", "num"), Col("Bound", "bound", "num"),
            Col("Goal", "goal", "num"), Col("Verdict", "state", "status")]
    out = []
    for metric, scope, goal in g[["metric", "scope", "goal"]].drop_duplicates().itertuples(
            index=False):
        idx = g.index[(g["metric"] == metric) & (g["scope"] == scope) & (g["goal"] == goal)]
        s = sup.loc[idx]
        not_ok = s[s["state"] != "pass"]
        side = str(g.loc[idx, "bound_side"].iloc[0])
        title = (f"{_mlabel(metric)}: {side} bound vs goal {goal:g} ({scope}) — "
                 f"{int((s['state'] == 'pass').sum())} pass, "
                 f"{int((s['state'] == 'fail').sum())} fail, "
                 f"{int((s['state'] == 'not_evaluable').sum())} not evaluable")
        body = (html_table(not_ok, cols, caption="Cells that did not pass") if len(not_ok)
                else "<p>Every cell passes.</p>")
        out.append(f"<h4>{esc(title)}</h4>{body}<details><summary>All {len(s)} cells"
                   f"</summary>{html_table(s, cols)}</details>")
    hidden = np.any(sup.attrs["suppressed"])
    return "\n".join(out) + (f"<p class='tnote'>{suppression_note(k)}</p>" if hidden else "")


@view("subgroups", "heterogeneity")
def _sub_heterogeneity(p: dict, k: int) -> str:
    h = _frame(p.get("heterogeneity"))
    if not len(h):
        return "<p class='muted'>No heterogeneity test.</p>"
    metrics = list(dict.fromkeys(h["metric"]))
    groups = list(dict.fromkeys(h["group"]))
    wide = [{"group": g_} for g_ in groups]
    for m in metrics:
        d = h[h["metric"] == m].set_index("group")["pvalue_adjusted"]
        for row in wide:
            row[m] = d.get(row["group"])
    methods = "; ".join(f"{esc(_mlabel(m))}: {esc(x)}" for m, x in
                        h.drop_duplicates("metric")[["metric", "method"]].itertuples(index=False))
    mult = h["multiplicity"].iloc[0]
    return html_table(wide, [Col("Grouping", "group")] + [Col(_mlabel(m), m, "p")
                                                           for m in metrics],
                      note=f"{esc(mult).capitalize()}-adjusted p values of the test that a "
                           f"metric is the same in every level of a grouping. Tests: {methods}.")


@view("subgroups", "fairness")
def _sub_fairness(p: dict, k: int) -> str:
    import numpy as np

    f = _frame(p.get("fairness"))
    if not len(f):
        return "<p class='muted'>No fairness gap computed.</p>"
    from rwe.dossier._privacy import gap_hidden

    plan = p.get("_plan")
    t = _frame(p.get("table"))
    f = f.astype(object)
    hide = np.array([gap_hidden(plan, t, r, k) for r in f.to_dict("records")], dtype=bool)
    for c in ("gap", "ci_low", "ci_high", "level_max", "level_min"):
        f.loc[hide, c] = SUPPRESSED
    f.attrs["suppressed"] = hide
    lvl = f"{float(_frame(p.get('fairness'))['ci_level'].iloc[0]):.0%}"
    return html_table(f, [Col("Grouping", "group"), Col("Definition", "definition"),
                          Col(f"Gap ({lvl} CI)", "gap", "ci", low="ci_low", high="ci_high"),
                          Col("Highest", "level_max"), Col("Lowest", "level_min"),
                          Col("Levels", "levels_compared", "int")],
                      note=_note_if(f, k, "Largest minus smallest level; intervals by "
                                          + esc(str(_frame(p.get('fairness'))['ci_method'].iloc[0]))
                                          + "."))


# =============================================================================== drift / change
def _mapping(x: Any) -> dict:
    """A protocol mapping field as a dict (the batch notebook's protocol facts wrap dicts)."""
    return dict(getattr(x, "_d", None) or x or {})


@view("drift", "plan")
def _drift_plan(p: dict, k: int) -> str:
    """The protocol's drift block as written (MON-1): reference, window, tests, groupings and
    alarm rules; their verdicts are in the verdict table above."""
    pr = p.get("_protocol")
    d = getattr(pr, "drift", None)
    if d is None:
        return "<p class='muted'>The protocol has no drift plan.</p>"
    rp = d.reference_period
    html = definition_list([
        ("Reference", d.reference or ("reference_rows" if pr.data.reference_rows
                                      else "reference_period")),
        ("Reference period", f"{rp.start} to {rp.end}" if rp else None),
        ("Window", d.window), ("Features", list(d.features)), ("Tests", list(d.tests)),
        ("Thresholds", ", ".join(f"{t} {v:g}" for t, v in
                                 sorted(_mapping(d.thresholds).items())) or None),
        ("Decision rule", d.decision), ("Significance level", d.alpha),
        ("Stratified by", list(d.by)), ("Charted metrics", list(d.metrics)),
        ("Smallest window x level judged (rows)", d.min_n),
    ])
    rows = [{"metric": a.metric, "method": a.method, "arl0": a.arl0,
             "params": ", ".join(f"{x}={v:g}" for x, v in sorted(_mapping(a.params).items())),
             "by": ", ".join(a.by) or "overall", "description": a.description}
            for a in d.alerts]
    if rows:
        html += html_table(rows, [Col("Metric", "metric"), Col("Chart", "method"),
                                  Col("Parameters", "params"),
                                  Col("In-control ARL", "arl0", "int"), Col("By", "by"),
                                  Col("Description", "description")],
                           caption="Pre-specified alarm rules")
    return html


@view("drift", "analysis")
def _drift_analysis(p: dict, k: int) -> str:
    """The drift module's own page (rwe.drift.drift_page_html), counts below k suppressed."""
    if "settings" not in p:
        return ""
    from rwe.dossier._privacy import DRIFT_TABLES, reviewer_levels
    from rwe.drift import drift_page_html

    record = reviewer_levels({x: v for x, v in p.items() if not x.startswith("_")},
                             p.get("_plan"), DRIFT_TABLES)
    plan = p.get("_plan")
    if plan is not None:  # findings naming a hidden cell are not repeated on the page
        from rwe._evidence import Finding
        from rwe.dossier._privacy import finding_hidden

        record["findings"] = [f for f in record.get("findings") or []
                              if not finding_hidden(Finding.from_dict(f), k, plan, {})]
    # the section has its own heading and verdict table
    return drift_page_html(record, small_cell_k=k, heading=False, verdicts=False)


def _cc_cell(r: dict) -> str:
    return "overall" if r.get("group") == "overall" else f"{r.get('group')} = {r.get('level')}"


@view("change_control", "criteria")
def _cc_criteria(p: dict, k: int) -> str:
    """The decision (verdict first), what it was compared with, the error budget, the ledger
    entry, and one row per pre-specified criterion with its worst cell (CHG-5, CHG-6)."""
    if "verdict" not in p:
        return "<p class='muted'>The protocol has no change-control plan.</p>"
    import numpy as np

    from rwe.change_control._result import _BANNER

    verdict = p["verdict"]
    css = {"APPROVE": "pass", "REJECT": "fail"}.get(verdict, "warn")
    banner = (f"<div class='callout {css}'><b>{esc(verdict)}</b> &mdash; "
              f"{esc(_BANNER[verdict].format(c=p['candidate']).split(': ', 1)[-1])}</div>")
    o = p.get("online") or {}
    prov = p.get("provenance") or {}
    ts = prov.get("test_set") or {}
    led = p.get("ledger")
    comps = ", ".join(f"{c['version']} ({' and '.join(c['roles'])})"
                      for c in p.get("comparators") or [])
    head = definition_list([
        ("Candidate", p.get("candidate")), ("Compared with", comps),
        ("One-sided level of this update", f"{p['level']:.4g} ({o.get('procedure', 'fixed')})"),
        ("Error budget", f"{o['spent']:.4g} of {o['alpha']:g} spent; next update tested at "
                         f"{o['next_level']:.4g}" if o.get("alpha") is not None
         and o.get("next_level") is not None else None),
        ("Test set", f"{fmt_int(ts.get('cases'))} cases, content sha256 {ts.get('sha256')}"
         + (f", look {ts['look']} of at most {ts['max_looks']}" if ts.get("look")
            and ts.get("max_looks") else "")),
        ("Plan sha256", RawHTML(f"<code>{esc(prov.get('plan_sha256'))}</code>")),
        ("Ledger", (f"{led['file']}: entry {led['seq']} of {led.get('entries', '?')}, sha256 "
                    f"{led['sha256']}, chain verified" if led else
                    "NOT RECORDED: this comparison is not a change-control decision")),
    ])
    crit = _frame(p.get("criteria")).astype(object)
    recs = crit.to_dict("records")
    crit["worst"] = [DASH if not isinstance(r.get("worst_group"), str) else
                     _cc_cell({"group": r["worst_group"], "level": r["worst_level"]})
                     + (f" vs {r['worst_comparator']}"
                        if isinstance(r.get("worst_comparator"), str) else "") for r in recs]
    crit["req"] = ["required" if r.get("required") else "secondary" for r in recs]
    plan = p.get("_plan")
    if plan is not None:  # the worst cell of a hidden subgroup keeps its name, not its numbers
        hide = np.array([isinstance(r.get("worst_group"), str) and r["worst_group"] != "overall"
                         and plan.hides(r["worst_group"], r["worst_level"])
                         for r in recs], dtype=bool)
        crit.loc[hide, ["worst_estimate", "worst_bound"]] = SUPPRESSED
    crit["cells"] = [f"{int(r['cells_pass'])} / {int(r['cells_fail'])} / "
                     f"{int(r['cells_not_evaluable'])}" for r in recs]
    table = html_table(
        crit, [Col("Step", "step", "int"), Col("Criterion", "criterion"), Col("Test", "test"),
               Col("", "req"), Col("Margin", "margin", "num"), Col("Goal", "goal", "num"),
               Col("Cells pass / fail / not judged", "cells"), Col("Worst cell", "worst"),
               Col("Worst estimate", "worst_estimate", "num", 4),
               Col("Its bound", "worst_bound", "num", 4), Col("Verdict", "status", "status"),
               Col("Why", "reason")],
        caption="Pre-specified acceptance criteria, in testing order",
        note="A criterion after a failed or unjudged required step is not evaluated "
             "(fixed-sequence gatekeeping).")
    return banner + head + table


@view("change_control", "cells")
def _cc_cells(p: dict, k: int) -> str:
    """Every cell that fails or could not be judged, with its interval; a cell of fewer than
    k rows or events keeps its status and loses its numbers."""
    if "verdict" not in p:
        return ""
    df = _frame(p.get("table"))
    if not len(df):
        return ""
    import numpy as np

    from rwe.dossier._privacy import THRESHOLD

    df = df[df["status"].isin(["fail", "not_evaluable"])].copy()
    if not len(df):
        return "<p>No cell fails or is left unjudged.</p>"
    small = small_rows(df, k, counts=["n", "events"], complements=[("n", "events")])
    plan = p.get("_plan")
    if plan is not None:
        small |= np.array([plan.hides(r["group"], r["level"]) or plan.hides(
            r["group"], r["level"], THRESHOLD) for r in df.to_dict("records")], dtype=bool)
    out = df.astype(object)
    for c in ("n", "events", "candidate_value", "comparator_value", "estimate", "ci_low",
              "ci_high"):
        out.loc[small, c] = SUPPRESSED
    out["cell"] = [_cc_cell(r) for r in out.to_dict("records")]
    out.attrs["suppressed"] = small
    return html_table(out, [Col("Criterion", "criterion"), Col("Cell", "cell"),
                            Col("Versus", "comparator"), Col("n", "n", "int"),
                            Col("Events", "events", "int"),
                            Col("Candidate", "candidate_value", "num", 4),
                            Col("Comparator", "comparator_value", "num", 4),
                            Col("Difference (CI)", "estimate", "ci", 4, low="ci_low",
                                high="ci_high"),
                            Col("Threshold", "threshold_value", "num", 4),
                            Col("Verdict", "status", "status"), Col("Why", "reason")],
                      caption="Cells that fail or cannot be judged",
                      note=_note_if(out, k, "Differences are candidate minus comparator; "
                                            "intervals two-sided at 1 - 2 x the level."))


@view("change_control", "cumulative")
def _cc_cumulative(p: dict, k: int) -> str:
    """Every approved version and the candidate against the original (CHG-7, bio-creep)."""
    if "verdict" not in p:
        return ""
    df = _frame(p.get("cumulative"))
    return html_table(df, [Col("Version", "version"), Col("Role", "role"),
                           Col("Metric", "metric"), Col("Value", "value", "num", 4),
                           Col("Change vs original (CI)", "improvement_vs_original", "ci", 4,
                               low="ci_low", high="ci_high"),
                           Col("Margin", "margin", "num")],
                      caption="Cumulative effect against the original version",
                      note="Overall, on this test set.")


# =============================================================================== provenance
@view("provenance", "protocol")
def _prov_protocol(p: dict, k: int) -> str:
    pr = p["_protocol"]
    src = pr.data.source
    omop = None
    if src is not None and src.kind == "omop":
        omop = (f"cohort {src.cohort}, outcome {src.outcome} within days "
                f"{src.risk_window_start}-{src.horizon}"
                + (f", schema {src.schema_}" if src.schema_ else "")
                + (f", predictions {src.predictions}" if src.predictions else ""))
    return definition_list([
        ("Protocol", pr.name), ("File", pr.path.name if pr.path else None),
        ("sha256 (canonical form)", RawHTML(f"<code>{esc(pr.sha256)}</code>")),
        ("sha256 (file bytes)", RawHTML(f"<code>{esc(pr.file_sha256)}</code>")
         if pr.file_sha256 else None),
        ("Seed", pr.performance.seed),
        ("Data description", pr.data.description),
        # a database as the protocol writes it (a protocol never holds a password)
        ("Database", None if src is None else f"{src.url} ({src.kind})"),
        ("OMOP CDM cohort", omop),
        ("Query", pr.data.query if src is None else getattr(src, "query", None)),
    ])


@view("provenance", "files")
def _prov_files(p: dict, k: int) -> str:
    from pathlib import PurePath

    df = _frame(p.get("files"))
    # a database has no file to hash: the sha256 of the rows read stands for it
    rows = df["rows_sha256"] if "rows_sha256" in df else [None] * len(df)
    df["hash"] = [RawHTML(f"<code>{esc(h)}</code>") if h else
                  RawHTML(f"<code>{esc(r)}</code> (of the rows read)") if isinstance(r, str)
                  else "missing"
                  for h, r in zip(df["sha256"], rows, strict=True)]
    # a path as the protocol writes it, unless it is absolute: no path of the machine that
    # built the dossier on a page
    df["protocol_path"] = [None if v is None else (f".../{PurePath(v).name} (absolute in the "
                                                   "protocol)" if PurePath(v).is_absolute()
                                                   else v) for v in df["protocol_path"]]
    return html_table(df, [Col("Role", "role"), Col("File", "file"),
                           Col("Path in protocol", "protocol_path"), Col("Bytes", "bytes", "int"),
                           Col("sha256", "hash", "html")], css="files")


@view("provenance", "counts")
def _prov_counts(p: dict, k: int) -> str:
    c = p.get("counts") or {}
    per = p.get("period") or {}
    return definition_list([
        ("Rows", fmt_int(c.get("rows"))),
        ("Patients", fmt_int(c["patients"]) if "patients" in c else None),
        ("Events (label = 1)", fmt_int(c["events"]) if "events" in c else None),
        ("Prevalence", f"{100 * c['prevalence']:.2f}%" if c.get("prevalence") is not None
         else None),
        ("Sites", c.get("sites")), ("Equipment types", c.get("equipment_types")),
        ("Model versions scored", c.get("model_versions")),
        ("Period covered", f"{str(per.get('first'))[:10]} to {str(per.get('last'))[:10]}"
         if per else None),
        ("Reference standard", p["_protocol"].device.reference_standard),
    ])


@view("provenance", "by_site_quarter")
def _prov_time(p: dict, k: int) -> str:
    import numpy as np

    df = _frame(p.get("by_site_quarter"))
    if not len(df):
        return "<p class='muted'>No timestamp column: rows over time not available.</p>"
    has_site = "site" in df.columns
    counts = ["n"] + (["events"] if "events" in df.columns else [])
    roles = p["_protocol"].data.columns if p.get("_protocol") is not None else None
    site_col = getattr(roles, "site", None) or "site"
    sup = reviewer_table(df, p.get("_plan"), k, key=lambda r: (
        f"{site_col}{GROUP_SEP}quarter", f"{r['site']}{LEVEL_SEP}{r['quarter']}") if has_site
        else ("quarter", r["quarter"]), counts=counts,
        complements=[("n", "events")] if "events" in df.columns else [])
    if not has_site:
        return html_table(sup, [Col("Quarter", "quarter"), Col("Rows", "n", "int"),
                                Col("Events", "events", "int")], note=_note_if(sup, k))
    quarters = sorted(df["quarter"].unique())
    sites = list(dict.fromkeys(df["site"]))
    head = "".join(f"<th class='num'>{esc(q)}</th>" for q in quarters)
    body = []
    for s in sites:
        tds = []
        for q in quarters:
            m = ((df["site"] == s) & (df["quarter"] == q)).to_numpy()
            v = sup["n"].to_numpy()[m][0] if m.any() else 0
            tds.append(f"<td class='num'>{_count_html(v)}</td>")
        body.append(f"<tr><th class='txt'>{esc(s)}</th>{''.join(tds)}</tr>")
    return (f"<table class='rwe matrix'><caption>Rows per site (rows) and calendar quarter "
            f"(columns)</caption><thead><tr><th></th>{head}</tr></thead><tbody>{''.join(body)}"
            f"</tbody></table>" + (f"<p class='tnote'>{suppression_note(k)}</p>"
                                  if np.any(sup.attrs["suppressed"]) else ""))


@view("provenance", "missingness")
def _prov_missing(p: dict, k: int) -> str:
    df = _frame(p.get("missingness"))
    if not len(df):
        return ""
    df["column_shown"] = [f"{c} (derived)" if d else c for c, d in
                          zip(df["column"], df["derived"], strict=True)]
    plan = p.get("_plan")
    sup = reviewer_table(df, None, k, key=lambda r: ("overall", "all"),
                         counts=["n", "n_missing"], complements=[("n", "n_missing")],
                         dependent=["fraction"])
    if plan is not None:
        for pos, r in enumerate(df.to_dict("records")):
            if plan.hides("overall", "all", f"missing={r['column']}") and not \
                    sup.attrs["suppressed"][pos]:
                v = float(r["n_missing"])
                sup.iat[pos, sup.columns.get_loc("n_missing")] = (
                    small_label(k) if 1 <= v < k else SUPPRESSED)
                sup.iat[pos, sup.columns.get_loc("fraction")] = SUPPRESSED
                sup.attrs["suppressed"][pos] = True
    thr = p.get("missingness_threshold")
    thr = 0.2 if thr is None else thr
    return html_table(sup, [Col("Role", "role"), Col("Column", "column_shown"),
                            Col("Rows", "n", "int"), Col("Missing", "n_missing", "int"),
                            Col("Missing %", "fraction", "pct")],
                      note=_note_if(sup, k, f"Protocol threshold for flagging: {thr:.0%}."))


@view("provenance", "validation")
def _prov_validation(p: dict, k: int) -> str:
    v = p.get("validation") or {}
    return (f"<p>Load-time validation <b>{esc(v.get('status'))}</b>. Rules checked on every "
            "row:</p>" + bullet_list(v.get("rules") or [], css="rules")
            + "<p class='tnote'>Not provided by the protocol (shown so a reviewer can ask for "
              "them): " + esc(", ".join(NOT_PROVIDED)) + ".</p>")


# =============================================================================== model card
@view("model_card", "card")
def _card(p: dict, k: int) -> str:
    from rwe.dossier._modelcard import render_card_html

    return render_card_html(p, k, p.get("_plan"))


# =============================================================================== federation
# the federation section's views (a merge's dossier) register themselves in VIEWS
from rwe.dossier import _views_federation  # noqa: E402, F401
