"""Stop-gap: typed verdicts, findings and a dict round trip for
:class:`rwe.representativeness.RepresentativenessResult` until the representativeness module
provides them itself (``result.verdicts``, ``result.findings``, ``to_dict``/``from_dict``).

The dossier reaches this module only through :data:`rwe.dossier._analyses.ADAPTERS`; when the
module lands, its adapter becomes the generic one and this file is deleted. Nothing here
computes a statistic: the checks compare the result's own flags and the protocol's thresholds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rwe._evidence import (
    STATUS_FAIL,
    STATUS_NOT_EVALUABLE,
    STATUS_PASS,
    Finding,
    Verdict,
    register_finding_template,
    verdict_id,
)
from rwe._results import GROUP_SEP, json_safe

__all__ = ["to_dict", "from_dict", "verdicts", "findings", "TABLES", "TEXT_CODE"]

SECTION = "representativeness"
#: The result's tables (lists of records in the dict), with their column constants.
TABLES = ("shares", "tests", "smd", "coverage", "adequacy", "sites", "missingness")
#: Code of the findings the module still writes as sentences (rendered with
#: :func:`rwe.dossier._suppress.scrub_text` until they are typed).
TEXT_CODE = "representativeness.text"
register_finding_template(TEXT_CODE, "{text}")
_REFERENCE_KEYS = ("name", "title", "version", "year", "universe", "source", "verification",
                   "card")


def _reference(rep: Any) -> dict[str, Any]:
    meta = dict(getattr(rep.reference, "metadata", {}) or {})
    ref = {k: meta.get(k) for k in _REFERENCE_KEYS}
    ref["name"] = ref.get("name") or rep.reference.name
    ref["derived"] = {k: v for k, v in meta.items() if k.startswith("derived:")}
    return json_safe(ref)


def to_dict(rep: Any) -> dict[str, Any]:
    """The result as JSON-safe data: its tables as records, the reference's citation (never
    its rows or its local path), the typed verdicts and findings."""
    out: dict[str, Any] = {"n": int(rep.n), "attributes": list(rep.attributes),
                           "intersections": [list(i) for i in rep.intersections],
                           "parameters": json_safe(rep.parameters), "reference": _reference(rep),
                           "tipton": json_safe(rep.tipton) if rep.tipton is not None else None,
                           "tipton_reason": rep.tipton_reason, "notes": list(rep.notes)}
    for name in TABLES:
        out[name] = json_safe(getattr(rep, name))
    out["verdicts"] = [v.to_dict() for v in verdicts(rep)]
    out["findings"] = [f.to_dict() for f in findings(rep)]
    return out


def from_dict(d: Mapping[str, Any]) -> Any:
    """A :class:`RepresentativenessResult` from :func:`to_dict` (the reference keeps its name
    and citation; its rows are not part of the record)."""
    import pandas as pd

    from rwe.representativeness import ReferencePopulation, RepresentativenessResult, TiptonResult
    from rwe.representativeness import _representativeness as _r

    columns = {"shares": _r.SHARE_COLUMNS, "tests": _r.TEST_COLUMNS, "smd": _r.SMD_COLUMNS,
               "coverage": _r.COVERAGE_COLUMNS, "adequacy": _r.ADEQUACY_COLUMNS,
               "sites": _r.SITE_COLUMNS, "missingness": _r.MISSING_COLUMNS}
    frames = {}
    for name in TABLES:
        recs = d.get(name) or []
        f = pd.DataFrame(recs) if recs else pd.DataFrame(columns=columns[name])
        for c in f.columns:  # JSON nulls in numeric columns come back as NaN, not None
            if f[c].dtype == object and f[c].map(lambda v: v is None or isinstance(
                    v, (int, float)) and not isinstance(v, bool)).all() and f[c].notna().any():
                f[c] = pd.to_numeric(f[c])
        frames[name] = f
    ref = d.get("reference") or {}
    meta = {k: str(v) for k, v in ref.items() if k != "derived" and v is not None}
    meta.update({k: str(v) for k, v in (ref.get("derived") or {}).items()})
    t = d.get("tipton")
    tipton = None if t is None else TiptonResult(**{**t, "covariates": tuple(t["covariates"]),
                                                    "notes": tuple(t.get("notes") or ())})
    params = dict(d.get("parameters") or {})
    if isinstance(params.get("ppr_band"), list):
        params["ppr_band"] = tuple(params["ppr_band"])
    return RepresentativenessResult(
        **frames, tipton=tipton, tipton_reason=d.get("tipton_reason"),
        findings=[f["values"]["text"] for f in d.get("findings") or ()
                  if f.get("code") == TEXT_CODE],
        notes=list(d.get("notes") or ()),
        reference=ReferencePopulation(name=str(ref.get("name")), shares={}, metadata=meta),
        attributes=tuple(d.get("attributes") or ()),
        intersections=tuple(tuple(i) for i in d.get("intersections") or ()),
        n=int(d.get("n") or 0), parameters=params)


def findings(rep: Any) -> tuple[Finding, ...]:
    """The module's sentences as findings of code :data:`TEXT_CODE` (stop-gap)."""
    return tuple(Finding(TEXT_CODE, values={"text": str(t)}) for t in rep.findings)


def _check(label: str, content: dict, criterion: str, status: str, reason: str | None,
           source: str, cells: list[dict] | None = None, counts: dict | None = None) -> Verdict:
    return Verdict(id=verdict_id(SECTION, "check", content, label), section=SECTION,
                   kind="check", criterion=criterion, status=status, reason=reason,
                   source=source, cells=tuple(cells or ()), counts=dict(counts or {}))


def _cell(group: str, level: Any, status: str, estimate: Any = None, n: Any = None,
          **extra: Any) -> dict[str, Any]:
    return json_safe({"group": group, "level": level, "status": status, "estimate": estimate,
                      "n": n, **extra})


def verdicts(rep: Any) -> tuple[Verdict, ...]:
    """The protocol's representativeness checks, judged on the result's flags: PPR band per
    attribute, SMD threshold, minimum intersectional cell size, sample-size adequacy and the
    missingness threshold. A check without the data to decide it is ``not_evaluable``."""
    from rwe.representativeness import FLAG_ABSENT, FLAG_NO_DATA, FLAG_OVER, FLAG_UNDER

    params = rep.parameters
    out: list[Verdict] = []
    low, high = params["ppr_band"]
    sh = rep.shares
    for attr in rep.attributes:
        d = sh[sh["attribute"] == attr]
        content = {"attribute": attr, "ppr_band": [low, high]}
        criterion = (f"{attr}: participation-to-prevalence ratio of every category within "
                     f"[{low:g}, {high:g}]")
        reasons = []
        if not d["reference_share"].notna().any():
            reasons.append(f"reference {rep.reference.name!r} does not define {attr}")
        if not len(d) or d["flag"].eq(FLAG_NO_DATA).all():
            reasons.append(f"{attr} is missing for every row of the cohort")
        if reasons:
            out.append(_check(f"ppr-{attr}", content, criterion, STATUS_NOT_EVALUABLE,
                              " and ".join(reasons), "population.attributes"))
            continue
        bad = d["flag"].isin([FLAG_UNDER, FLAG_OVER, FLAG_ABSENT]).to_numpy()
        cells = [_cell(attr, r["category"], STATUS_FAIL if b else STATUS_PASS, r["ppr"], r["n"],
                       flag=r["flag"], low=r["ppr_low"], high=r["ppr_high"])
                 for r, b in zip(d.to_dict("records"), bad, strict=True)]
        nbad = int(bad.sum())
        out.append(_check(
            f"ppr-{attr}", content, criterion, STATUS_FAIL if nbad else STATUS_PASS,
            f"{nbad} of {len(d)} categories outside the band" if nbad
            else f"all {len(d)} categories within the band", "population.ppr_band", cells,
            {"pass": len(d) - nbad, "fail": nbad}))
    smd = rep.smd[rep.smd["comparison"] != "reference shares"]
    thr = params["smd_threshold"]
    if len(smd):
        comp = str(smd["comparison"].iloc[0])
        bad = (smd["flag"] == "imbalanced").to_numpy()
        cells = [_cell(r["covariate"], r["level"] if isinstance(r["level"], str) else None,
                       STATUS_FAIL if b else STATUS_PASS, r["smd"],
                       r["n_a"], kind=r["kind"], mean=r["mean_a"])
                 for r, b in zip(smd.to_dict("records"), bad, strict=True)]
        nbad = int(bad.sum())
        out.append(_check(
            "smd", {"smd_threshold": thr, "comparison": comp},
            f"|SMD| <= {thr:g} for every covariate vs the {comp}",
            STATUS_FAIL if nbad else STATUS_PASS,
            f"{nbad} of {len(smd)} covariate levels imbalanced" if nbad
            else f"all {len(smd)} covariate levels balanced", "population.smd_threshold", cells,
            {"pass": len(smd) - nbad, "fail": nbad}))
    else:
        out.append(_check("smd", {"smd_threshold": thr}, f"|SMD| <= {thr:g} for every covariate",
                          STATUS_NOT_EVALUABLE, "no population rows to compare with",
                          "population.smd_threshold"))
    cov = rep.coverage
    if len(cov):
        small = cov["below_min_n"].astype(bool).to_numpy()
        cells = [_cell(r["intersection"], r["cell"], STATUS_FAIL if s else STATUS_PASS, None,
                       r["n"], n_positive=r.get("n_positive"))
                 for r, s in zip(cov.to_dict("records"), small, strict=True)]
        n_small = int(small.sum())
        out.append(_check(
            "coverage", {"min_n": params["min_n"],
                         "intersections": [GROUP_SEP.join(i) for i in rep.intersections]},
            f"every intersectional cell has at least {params['min_n']} rows",
            STATUS_FAIL if n_small else STATUS_PASS,
            f"{n_small} of {len(cov)} cells below {params['min_n']} rows "
            f"({int(cov['empty'].astype(bool).sum())} empty)" if n_small
            else f"all {len(cov)} cells have at least {params['min_n']} rows",
            "subgroups.min_n", cells, {"pass": len(cov) - n_small, "fail": n_small}))
    ad = rep.adequacy
    if params.get("target_half_width") is not None and len(ad):
        single = ad[~ad["grouping"].str.contains(GROUP_SEP, regex=False)]
        short = ~single["reached"].fillna(True).astype(bool).to_numpy()
        cells = [_cell(r["grouping"], r["subgroup"], STATUS_FAIL if s else STATUS_PASS, None,
                       r["n"], n_positive=r["n_positive"], required=r["required"])
                 for r, s in zip(single.to_dict("records"), short, strict=True)]
        n_short = int(short.sum())
        out.append(_check(
            "adequacy", {"target_half_width": params["target_half_width"],
                         "assumed_value": params["assumed_value"],
                         "confidence_level": params["confidence_level"]},
            f"every subgroup large enough for a ±{params['target_half_width']:g} "
            f"{params['confidence_level']:.0%} interval at an assumed value of "
            f"{params['assumed_value']:g}", STATUS_FAIL if n_short else STATUS_PASS,
            f"{n_short} of {len(single)} subgroups short of the required size" if n_short
            else f"all {len(single)} subgroups reach the required size",
            "performance.target_half_width", cells,
            {"pass": len(single) - n_short, "fail": n_short}))
    miss = rep.missingness
    if len(miss):
        thr_m = params["missingness_threshold"]
        bad = miss["flag"].astype(bool).to_numpy()
        cells = [_cell(r["grouping"], r["subgroup"], STATUS_FAIL if b else STATUS_PASS,
                       r["fraction"], r["n"], variable=r["variable"], n_missing=r["n_missing"])
                 for r, b in zip(miss.to_dict("records"), bad, strict=True)]
        nbad = int(bad.sum())
        out.append(_check(
            "missingness", {"missingness_threshold": thr_m},
            f"missing values below {thr_m:.0%} for every variable, overall and per subgroup",
            STATUS_FAIL if nbad else STATUS_PASS,
            f"{nbad} variable x subgroup cells at or above the threshold" if nbad
            else "no variable reaches the threshold", "population.missingness_threshold",
            cells, {"pass": len(miss) - nbad, "fail": nbad}))
    return tuple(out)
