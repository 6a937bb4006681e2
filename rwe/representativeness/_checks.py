"""Typed verdicts (the pre-specified representativeness checks) and findings (REP-6) of a
representativeness analysis, built from its tables only.

Verdict ids come from the protocol content of each check (:func:`rwe._evidence.verdict_id`):
reordering a protocol's attributes, covariates or intersections keeps them. Findings carry
their numbers in ``values`` and the counts they rest on in ``counts``; their sentences are the
templates registered below, and a finding on a count below the small-cell threshold ``k`` is
rendered with the ``:suppressed`` wording (no numbers).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from rwe._evidence import (
    STATUS_FAIL,
    STATUS_NOT_EVALUABLE,
    STATUS_NOT_EVALUATED,
    STATUS_PASS,
    Finding,
    Verdict,
    verdict_id,
)
from rwe.representativeness._findings import FINDING_CODES
from rwe.representativeness._result import (
    FLAG_ABSENT,
    FLAG_ADEQUATE,
    FLAG_NO_DATA,
    FLAG_NOT_IN_REFERENCE,
    FLAG_OVER,
    FLAG_UNDER,
    FLAG_ZERO_REFERENCE,
)

__all__ = ["build_verdicts", "build_findings", "FINDING_CODES", "scope_caveat"]

SECTION = "representativeness"


def _fmt(v: Any, digits: int = 3) -> str:
    try:
        return f"{float(v):.{digits}f}"
    except (TypeError, ValueError):
        return "n/a"


def _listing(items: list[str], limit: int = 5) -> str:
    shown = "; ".join(items[:limit])
    return shown + (f"; and {len(items) - limit} more" if len(items) > limit else "")


def _num(x: Any) -> float | None:
    v = float(x)
    return v if np.isfinite(v) else None


def _is_intersection(grouping: str, attributes: tuple[str, ...]) -> bool:
    return grouping not in attributes


def _age_words(scope: dict[str, Any]) -> str | None:
    """The age clause of a scope (:func:`rwe.representativeness._representativeness.
    reference_scope`), or None when the reference's ages match the intended use (or neither
    is known)."""
    from rwe.representativeness._reference import describe_ages

    kind = scope.get("age_scope")
    if kind in (None, "matches"):
        return None
    ref = describe_ages(scope.get("reference_ages"))
    if kind == "intended use not stated":
        return f"reference covers {ref}; no intended-use minimum age was given"
    if kind == "reference ages not stated":
        return (f"the reference does not state its ages; the intended-use population is "
                f"{describe_ages(scope.get('intended_ages'))}")
    return (f"reference covers {ref}; the intended-use population is "
            f"{describe_ages(scope.get('intended_ages'))}")


def scope_caveat(scope: dict[str, Any] | None) -> str:
    """The plain-words caveat of a finding or verdict resting on the reference shares of one
    attribute: the reference's age range when it differs from the intended use (or either is
    not stated) and, when the reference says so, that its figures were not verified; ``""``
    when neither applies."""
    if not scope:
        return ""
    parts = [w for w in (_age_words(scope),) if w]
    if scope.get("reference_verified") is False:
        parts.append("reference figures not verified against the published tables")
    return "; ".join(parts)


def _scope_values(scope: dict[str, Any] | None) -> dict[str, Any]:
    """The typed scope fields every finding on the reference shares carries, with the
    bracketed caveat its template appends."""
    scope = scope or {}
    text = scope_caveat(scope)
    return {"reference_ages": scope.get("reference_ages"),
            "intended_ages": scope.get("intended_ages"),
            "age_scope": scope.get("age_scope"),
            "reference_verified": scope.get("reference_verified"),
            "caveat": f" [{text}]" if text else ""}


# =============================================================================== verdicts
def _not_evaluable(d: pd.DataFrame, attr: str, reference: str) -> str | None:
    """Why the PPR check of ``attr`` cannot be judged (its shares rows ``d``), or None.

    An attribute the reference does not define has no reference share in any row; one with no
    observed value in the cohort is flagged "no data" in every row. Either way there is no
    ratio to judge: missing data never pass.
    """
    reasons = []
    if not d["reference_share"].notna().any():
        reasons.append(f"reference {reference!r} does not define {attr}")
    if not len(d) or d["flag"].eq(FLAG_NO_DATA).all():
        reasons.append(f"{attr} is missing for every row of the cohort")
    return " and ".join(reasons) if reasons else None


def _counts(statuses: list[str]) -> dict[str, int]:
    return {s: n for s in (STATUS_PASS, STATUS_FAIL, STATUS_NOT_EVALUABLE)
            if (n := sum(1 for x in statuses if x == s))}


def _smd_verdicts(smd: pd.DataFrame, covariates: tuple[str, ...], comparison: str | None,
                  thr: float, role: str | None) -> list[Verdict]:
    """The ``smd`` check (vs rows of a population the device is meant for) and, when the rows
    are the development population, the ``development_shift`` check in its place: the same
    rule and numbers, reported as the shift from the development population."""
    content = {"smd_threshold": thr, "covariates": sorted(covariates)}
    vid = verdict_id(SECTION, "check", {"check": "smd", **content}, label="smd")
    t = smd[smd["comparison"] != "reference shares"]
    if role == "development":
        out = [Verdict(vid, SECTION, "check", f"|SMD| <= {thr:g} for every covariate",
                       STATUS_NOT_EVALUATED, goal=thr,
                       reason="no rows of the intended-use population to compare with (the "
                              "development population is compared in development_shift)",
                       source="population.smd_threshold")]
        vid = verdict_id(SECTION, "check", {"check": "development_shift", **content},
                         label="development_shift")
        what = "shift from the development population"
        criterion = f"{what}: |SMD| <= {thr:g} for every covariate"
    else:
        out = []
        criterion = f"|SMD| <= {thr:g} for every covariate vs the {comparison}"
    if len(t):
        flags = t["flag"].to_numpy()
        bad = t[flags == "imbalanced"]
        undefined = t[flags == "not computable"]

        def term(r):
            return r.covariate + (f" = {r.level}" if isinstance(r.level, str) and r.level
                                  else "")

        status_cells = np.where(flags == "imbalanced", STATUS_FAIL,
                                np.where(flags == "balanced", STATUS_PASS,
                                         STATUS_NOT_EVALUABLE)).tolist()
        cells = tuple({"group": r.covariate, "level": r.level, "status": st,
                       "estimate": _num(r.smd), "n": int(r.n_a) if np.isfinite(r.n_a) else None,
                       "reason": r.flag} for r, st in zip(t.itertuples(), status_cells,
                                                          strict=True))
        if len(bad):
            status = STATUS_FAIL
            reason = (f"{len(bad)} of {len(t)} covariate levels imbalanced: "
                      + _listing([f"{term(r)} SMD {_fmt(r.smd, 2)}" for r in bad.itertuples()]))
        elif len(undefined):
            status = STATUS_NOT_EVALUABLE
            reason = (f"{len(undefined)} of {len(t)} covariate levels have no SMD (no value, or "
                      "fewer than 2 values of a continuous covariate, in one population): "
                      + _listing([term(r) for r in undefined.itertuples()]))
        else:
            status, reason = STATUS_PASS, f"all {len(t)} covariate levels balanced"
        finite = np.abs(t["smd"].to_numpy(dtype=float))
        finite = finite[~np.isnan(finite)]
        out.append(Verdict(vid, SECTION, "check", criterion, status,
                           estimate=float(finite.max()) if finite.size else None, goal=thr,
                           reason=reason, source="population.smd_threshold",
                           counts=_counts(status_cells), cells=cells))
    elif comparison is None:
        out.append(Verdict(vid, SECTION, "check", f"|SMD| <= {thr:g} for every covariate",
                           STATUS_NOT_EVALUATED, goal=thr,
                           reason="no population rows to compare with",
                           source="population.smd_threshold"))
    else:
        out.append(Verdict(vid, SECTION, "check", criterion, STATUS_NOT_EVALUABLE, goal=thr,
                           reason=f"no covariate is shared by the cohort and the {comparison}",
                           source="population.smd_threshold"))
    return out


def build_verdicts(*, shares: pd.DataFrame, smd: pd.DataFrame, coverage: pd.DataFrame,
                   adequacy: pd.DataFrame, missingness: pd.DataFrame,
                   attributes: tuple[str, ...], intersections: tuple[tuple[str, ...], ...],
                   covariates: tuple[str, ...], reference: str, comparison: str | None,
                   params: dict[str, Any], scope: dict[str, dict[str, Any]] | None = None,
                   comparison_role: str | None = None) -> tuple[Verdict, ...]:
    """The pre-specified checks, one typed verdict each (see
    :func:`rwe.representativeness.assess_representativeness`, Notes). ``scope`` maps each
    attribute to its reference scope (ages, verification); ``comparison_role`` is
    ``"development"`` when the compared rows are the development population."""
    out: list[Verdict] = []
    low, high = params["ppr_band"]
    min_age = params.get("reference_min_age")
    scope = scope or {}
    for attr in attributes:
        d = shares[shares["attribute"] == attr]
        criterion = (f"{attr}: participation-to-prevalence ratio of every category within "
                     f"[{low:g}, {high:g}]")
        content: dict[str, Any] = {"check": "ppr", "attribute": attr, "ppr_band": [low, high],
                                   "reference": reference}
        if min_age is not None:  # the population judged against is part of the criterion
            content["min_age"] = min_age
        vid = verdict_id(SECTION, "check", content, label=f"ppr.{attr}")
        caveat = scope_caveat(scope.get(attr))
        tail = f"; {caveat}" if caveat else ""
        why = _not_evaluable(d, attr, reference)
        if why is not None:
            out.append(Verdict(vid, SECTION, "check", criterion, STATUS_NOT_EVALUABLE,
                               reason=why, source="population.attributes"))
            continue
        bad_mask = d["flag"].isin([FLAG_UNDER, FLAG_OVER, FLAG_ABSENT]).to_numpy()
        judged = d["flag"].isin([FLAG_UNDER, FLAG_OVER, FLAG_ABSENT, FLAG_ADEQUATE]).to_numpy()
        status_cells = np.where(bad_mask, STATUS_FAIL,
                                np.where(judged, STATUS_PASS, STATUS_NOT_EVALUABLE)).tolist()
        bad = d[bad_mask]
        items = [f"{r.category} PPR {_fmt(r.ppr, 2)} ({r.flag})" for r in bad.itertuples()]
        cells = tuple({"group": attr, "level": r.category, "status": st,
                       "estimate": _num(r.ppr), "ci_low": _num(r.ppr_low),
                       "ci_high": _num(r.ppr_high), "n": int(r.n), "reason": r.flag}
                      for r, st in zip(d.itertuples(), status_cells, strict=True))
        out.append(Verdict(
            vid, SECTION, "check", criterion, STATUS_FAIL if len(bad) else STATUS_PASS,
            reason=((f"{len(bad)} of {len(d)} categories outside the band: " + _listing(items))
                    if len(bad) else f"all {len(d)} categories within the band") + tail,
            source="population.ppr_band", counts=_counts(status_cells), cells=cells))

    out.extend(_smd_verdicts(smd, covariates, comparison, params["smd_threshold"],
                             comparison_role))
    min_n = params["min_n"]
    if len(coverage):
        below = coverage["below_min_n"].astype(bool).to_numpy()
        n_small = int(below.sum())
        status_cells = np.where(below, STATUS_FAIL, STATUS_PASS).tolist()
        cells = tuple({"group": r.intersection, "level": r.cell, "status": st, "n": int(r.n)}
                      for r, st in zip(coverage.itertuples(), status_cells, strict=True))
        out.append(Verdict(
            verdict_id(SECTION, "check", {"check": "coverage", "min_n": min_n,
                                          "intersections": sorted(" x ".join(i)
                                                                  for i in intersections)},
                       label="coverage"),
            SECTION, "check", f"every intersectional cell has at least {min_n} rows",
            STATUS_FAIL if n_small else STATUS_PASS, goal=float(min_n),
            reason=(f"{n_small} of {len(coverage)} cells below {min_n} rows "
                    f"({int(coverage['empty'].astype(bool).sum())} empty)") if n_small
            else f"all {len(coverage)} cells have at least {min_n} rows",
            source="subgroups.min_n", counts=_counts(status_cells), cells=cells))

    thw = params.get("target_half_width")
    if thw is not None and len(adequacy):
        single = adequacy[~adequacy["grouping"].map(
            lambda g: _is_intersection(g, attributes)).to_numpy(dtype=bool)]
        reached = single["reached"].fillna(True).astype(bool).to_numpy()
        short = single[~reached]
        have = "n_positive" if str(adequacy["basis"].iloc[0]) == "positives" else "n"
        status_cells = np.where(reached, STATUS_PASS, STATUS_FAIL).tolist()
        cells = tuple({"group": r.grouping, "level": r.subgroup, "status": st,
                       "n": int(getattr(r, have)), "required": int(r.required)}
                      for r, st in zip(single.itertuples(), status_cells, strict=True))
        level = params["confidence_level"]
        assumed = params["assumed_value"]
        out.append(Verdict(
            verdict_id(SECTION, "check", {"check": "adequacy", "target_half_width": thw,
                                          "assumed_value": assumed, "confidence_level": level,
                                          "attributes": sorted(attributes)}, label="adequacy"),
            SECTION, "check",
            f"every subgroup large enough for a ±{thw:g} {level:.0%} interval at an assumed "
            f"value of {assumed:g}",
            STATUS_FAIL if len(short) else STATUS_PASS,
            goal=float(adequacy["required"].iloc[0]),
            reason=(f"{len(short)} of {len(single)} subgroups short of the "
                    f"{int(adequacy['required'].iloc[0])} {adequacy['basis'].iloc[0]} needed: "
                    + _listing([str(s) for s in short["subgroup"]])) if len(short)
            else f"all {len(single)} subgroups reach the required size",
            source="performance.target_half_width", counts=_counts(status_cells),
            cells=cells))

    if len(missingness):
        thr_m = params["missingness_threshold"]
        flag = missingness["flag"].astype(bool).to_numpy()
        bad = missingness[flag]
        items = [f"{r.variable} in {r.grouping} = {r.subgroup} ({100 * r.fraction:.1f}%)"
                 if r.grouping != "(all)" else f"{r.variable} overall ({100 * r.fraction:.1f}%)"
                 for r in bad.itertuples()]
        status_cells = np.where(flag, STATUS_FAIL, STATUS_PASS).tolist()
        cells = tuple({"group": r.grouping, "level": r.subgroup, "variable": r.variable,
                       "status": st, "estimate": _num(r.fraction), "n": int(r.n),
                       "n_missing": int(r.n_missing)}
                      for r, st in zip(missingness.itertuples(), status_cells, strict=True))
        frac = missingness["fraction"].to_numpy(dtype=float)
        out.append(Verdict(
            verdict_id(SECTION, "check", {"check": "missingness", "missingness_threshold": thr_m},
                       label="missingness"),
            SECTION, "check",
            f"missing values below {thr_m:.0%} for every variable, overall and per subgroup",
            STATUS_FAIL if len(bad) else STATUS_PASS,
            estimate=float(np.nanmax(frac)) if np.isfinite(frac).any() else None, goal=thr_m,
            reason=(f"{len(bad)} variable x subgroup cells at or above the threshold: "
                    + _listing(items)) if len(bad) else "no variable reaches the threshold",
            source="population.missingness_threshold", counts=_counts(status_cells),
            cells=cells))
    return tuple(out)


# =============================================================================== findings
def _level_count(mean: float, n: float) -> int | None:
    if not (np.isfinite(mean) and np.isfinite(n)):
        return None
    return int(round(mean * n))


def build_findings(*, shares: pd.DataFrame, tests: pd.DataFrame, smd: pd.DataFrame,
                   tipton: Any, tipton_reason: str | None, coverage: pd.DataFrame,
                   adequacy: pd.DataFrame, sites: pd.DataFrame, missingness: pd.DataFrame,
                   attributes: tuple[str, ...], params: dict[str, Any],
                   scope: dict[str, dict[str, Any]] | None = None,
                   reference: dict[str, Any] | None = None,
                   comparison_role: str | None = None) -> tuple[Finding, ...]:
    """The typed findings (REP-6 data gaps statement), in reading order.

    Every finding on the reference shares carries the typed scope fields ``reference_ages``,
    ``intended_ages``, ``age_scope`` and ``reference_verified`` and, in its sentence, the
    caveat they imply; the last findings summarise them (``reference_age_scope`` per group of
    attributes, ``reference_unverified`` once). With ``comparison_role="development"`` the
    SMD and Tipton findings are the shift from the development population.
    """
    out: list[Finding] = []
    level = params["confidence_level"]
    scope = scope or {}
    sv = {a: _scope_values(scope.get(a)) for a in dict.fromkeys(shares["attribute"])}
    for r in shares.itertuples(index=False):
        subject = {"attribute": r.attribute, "category": r.category}
        n = int(r.n)
        extra = sv[r.attribute]
        if r.flag in (FLAG_UNDER, FLAG_OVER):
            code = ("representativeness.under_represented" if r.flag == FLAG_UNDER
                    else "representativeness.over_represented")
            out.append(Finding(code, subject, {
                "cohort_share": float(r.cohort_share), "ci_low": float(r.ci_low),
                "ci_high": float(r.ci_high), "level": level,
                "reference_share": float(r.reference_share), "ppr": float(r.ppr),
                "ppr_low": float(r.ppr_low), "ppr_high": float(r.ppr_high), "flag": r.flag,
                **extra}, {"n": n}, "warning"))
        elif r.flag == FLAG_ABSENT:
            out.append(Finding("representativeness.absent", subject,
                               {"reference_share": float(r.reference_share), **extra},
                               {"n": 0}, "warning"))
        elif r.flag == FLAG_NOT_IN_REFERENCE and n > 0:
            out.append(Finding("representativeness.not_in_reference", subject,
                               {"why": str(r.note).split(";")[0], **extra}, {"n": n},
                               "warning"))
        elif r.flag == FLAG_ZERO_REFERENCE and n > 0:
            out.append(Finding("representativeness.zero_reference", subject, dict(extra),
                               {"n": n}, "warning"))
    for attr, d in shares.groupby("attribute", sort=False):
        if len(d) and d["flag"].eq(FLAG_NO_DATA).all():
            out.append(Finding("representativeness.no_data", {"attribute": attr}, {}, {},
                               "critical"))
    for r in tests.itertuples(index=False):
        if r.attribute == "overall" or not np.isfinite(r.pvalue):
            continue
        if r.pvalue < 0.05:
            p_text = "< 0.001" if r.pvalue < 1e-3 else f"= {r.pvalue:.3f}"
            out.append(Finding("representativeness.distribution_differs",
                               {"attribute": r.attribute},
                               {"tvd": float(r.tvd), "chi2": float(r.chi2), "df": int(r.df),
                                "pvalue": float(r.pvalue), "p_text": p_text,
                                **sv.get(r.attribute, _scope_values(None))},
                               {"n": int(r.n)}, "warning"))
    thr = params["smd_threshold"]
    development = comparison_role == "development"
    for r in smd[smd["flag"] == "imbalanced"].itertuples(index=False):
        if r.comparison == "reference shares":
            continue  # already reported through the PPR
        categorical = r.kind == "categorical level"
        term = f"{r.covariate} = {r.level}" if categorical else str(r.covariate)
        if r.kind == "continuous":
            counts = {"n": int(r.n_a), "n_comparison": int(r.n_b)}
        else:
            counts = {"n": _level_count(r.mean_a, r.n_a),
                      "n_comparison": _level_count(r.mean_b, r.n_b)}
        out.append(Finding("representativeness.development_shift" if development
                           else "representativeness.smd_imbalanced",
                           {"covariate": r.covariate, "level": r.level if categorical else None},
                           {"term": term, "smd": float(r.smd), "comparison": r.comparison,
                            "threshold": thr}, counts, "warning"))
    if tipton is not None:
        out.append(Finding("representativeness.development_generalizability" if development
                           else "representativeness.generalizability", {},
                           {"b": float(tipton.b), "interpretation": tipton.interpretation},
                           {"n_sample": int(tipton.n_sample),
                            "n_population": int(tipton.n_population)}))
    elif tipton_reason:
        out.append(Finding("representativeness.generalizability_not_computed", {},
                           {"reason": tipton_reason}))
    min_n = params["min_n"]
    for inter, g in coverage.groupby("intersection", sort=False):
        small = int(g["below_min_n"].sum())
        if small:
            worst = g[g["below_min_n"]].nsmallest(3, "n")
            examples = ", ".join(f"{c} (n={n})" for c, n in zip(worst["cell"], worst["n"],
                                                                 strict=True))
            out.append(Finding("representativeness.small_cells", {"intersection": inter}, {
                "small": small, "cells": len(g), "empty": int(g["empty"].sum()),
                "min_n": min_n, "examples": examples,
                "example_cells": ", ".join(map(str, worst["cell"]))},
                {"n": [int(x) for x in worst["n"]]}, "warning"))
    thw = params["target_half_width"]
    if thw is not None and len(adequacy):
        reached = adequacy["reached"].fillna(True).astype(bool).to_numpy()
        inter_mask = adequacy["grouping"].map(
            lambda x: _is_intersection(x, attributes)).to_numpy(dtype=bool)
        single = adequacy[~reached & ~inter_mask]
        inter = adequacy[~reached & inter_mask]
        basis = adequacy["basis"].iloc[0]
        req = int(adequacy["required"].iloc[0])
        have_col = "n_positive" if basis == "positives" else "n"
        if len(single):
            shown = list(zip(single["subgroup"], single[have_col], strict=True))[:8]
            out.append(Finding("representativeness.sample_size_short", {}, {
                "short": len(single), "required": req, "basis": basis,
                "target_half_width": thw, "level": level,
                "assumed_value": params["assumed_value"],
                "listed": ", ".join(f"{s} ({int(h)})" for s, h in shown),
                "listed_names": ", ".join(str(s) for s, _ in shown),
                "more": f" and {len(single) - 8} more" if len(single) > 8 else "",
                "subgroups": [str(s) for s in single["subgroup"]]},
                {"n": [int(h) for _, h in shown]}, "warning"))
        if len(inter):
            out.append(Finding("representativeness.sample_size_short_intersections", {}, {
                "short": len(inter), "cells": int(inter_mask.sum()), "required": req,
                "basis": basis}, {}, "warning"))
    if len(sites):
        from rwe.representativeness._representativeness import MISSING_LEVEL

        # "(missing)": the rows with no equipment recorded, not a type of equipment (nor a
        # gap where a site has none of them)
        known = (sites["equipment"] != MISSING_LEVEL).to_numpy()
        ns = int((sites["level"] == "site").sum())
        ne = int(((sites["level"] == "equipment") & known).sum())
        if ns:
            out.append(Finding("representativeness.sites", {}, {
                "sites": ns, "equipment": ne,
                "equipment_text": f", {ne} equipment type(s)" if ne else ""}))
        sxe = sites[(sites["level"] == "site x equipment") & (sites["n"] == 0) & known]
        if len(sxe):
            pairs = list(zip(sxe["site"], sxe["equipment"], strict=True))
            out.append(Finding("representativeness.sites_empty", {}, {
                "combinations": len(sxe), "listed": ", ".join(f"{s} / {e}" for s, e in pairs),
                "pairs": [list(p) for p in pairs]}, {}, "warning"))
    thr_m = params["missingness_threshold"]
    overall = missingness[missingness["grouping"] == "(all)"].set_index("variable")
    for var in dict.fromkeys(missingness["variable"]):
        o = overall.loc[var]
        sub = missingness[(missingness["variable"] == var) & (missingness["grouping"] != "(all)")
                          & missingness["flag"]].sort_values("fraction", ascending=False)
        if bool(o["flag"]):
            out.append(Finding("representativeness.missing_overall", {"variable": var}, {
                "fraction": float(o["fraction"]), "threshold": thr_m},
                {"n_missing": int(o["n_missing"]), "n": int(o["n"])}, "warning"))
        elif len(sub):
            rows = list(zip(sub["grouping"], sub["subgroup"], sub["fraction"], sub["n_missing"],
                            sub["n"], strict=True))
            shown = rows[:5]
            out.append(Finding("representativeness.missing_in_subgroups", {"variable": var}, {
                "threshold": thr_m, "subgroups": len(sub), "fraction": float(o["fraction"]),
                "listed": ", ".join(f"{g} = {c} ({100 * f:.1f}%, {int(m)}/{int(n)})"
                                    for g, c, f, m, n in shown),
                "listed_names": ", ".join(f"{g} = {c}" for g, c, *_ in shown),
                "more": f" and {len(sub) - 5} more" if len(sub) > 5 else ""},
                {"n_missing": [int(m) for *_, m, _ in shown], "n": [int(n) for *_, n in shown]},
                "warning"))
    out.extend(_reference_findings(shares, scope, reference or {}))
    return tuple(out)


def _reference_findings(shares: pd.DataFrame, scope: dict[str, dict[str, Any]],
                        reference: dict[str, Any]) -> list[Finding]:
    """``reference_age_scope`` for each group of compared attributes whose reference figures
    cover other ages than the intended use (or either range is not stated), and
    ``reference_unverified`` once, naming the compared attributes whose reference figures the
    reference says were not verified (its ``verified`` header or per-attribute column)."""
    from rwe.representativeness._reference import describe_ages

    out: list[Finding] = []
    name = reference.get("name")
    compared = [a for a in dict.fromkeys(shares["attribute"])
                if shares.loc[shares["attribute"] == a, "reference_share"].notna().any()]
    groups: dict[tuple, list[str]] = {}
    for a in compared:
        sc = scope.get(a) or {}
        if sc.get("age_scope") in (None, "matches"):
            continue
        groups.setdefault((sc.get("age_scope"), sc.get("reference_ages"),
                           sc.get("intended_ages")), []).append(a)
    for (kind, ref_ages, intended), attrs in groups.items():
        if kind == "intended use not stated":
            intended_text = "and no intended-use minimum age was given"
            consequence = ("the comparison assumes the device is meant for that whole age range "
                           "(set population.min_age, or reference_min_age)")
        elif kind == "reference ages not stated":
            intended_text = f"the intended-use population is {describe_ages(intended)}"
            consequence = ("whether the reference matches the intended-use ages is unknown; "
                           "treat its PPRs as approximate")
        else:
            intended_text = f"the intended-use population is {describe_ages(intended)}"
            consequence = ("the reference has no figures for these attributes at the "
                           "intended-use ages, so their shares and PPRs compare the cohort with "
                           "a population of different ages: treat them as approximate")
        out.append(Finding("representativeness.reference_age_scope", {"attributes": attrs}, {
            "reference": name, "age_scope": kind, "reference_ages": ref_ages,
            "intended_ages": intended, "reference_ages_text": describe_ages(ref_ages),
            "intended_text": intended_text, "consequence": consequence,
            "attributes_text": ", ".join(attrs)}, {}, "warning"))
    unverified = [a for a in compared if (scope.get(a) or {}).get("reference_verified") is False]
    if unverified:
        version = reference.get("version")
        card = reference.get("card")
        every = unverified == compared
        out.append(Finding("representativeness.reference_unverified", {}, {
            "reference": name, "version": version, "verified": False,
            "verification": reference.get("verification"), "card": card,
            "attributes": unverified,
            "which_text": "" if every else f" for {', '.join(unverified)}",
            "on_text": "against it" if every else "on them",
            "version_text": f" (version {version})" if version else "",
            "card_text": f", {card}" if card else ""}, {}, "warning"))
    return out
