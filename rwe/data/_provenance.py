"""Provenance counts of an evaluation table: what was read (files, sha256, query), how much
(rows, patients, events, sites, period, rows per site and quarter), how complete (missing
values per column role) and which load-time rules it passed. Aggregates only: no row, no
identifier.

This module imports neither numpy nor pandas at import time (the dossier lists
:data:`VALIDATION_RULES` in kernels that load neither).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from rwe._evidence import Finding, Verdict
    from rwe.data._evaluation_set import EvaluationSet
    from rwe.data._sources import Source

__all__ = ["VALIDATION_RULES", "ProvenanceResult", "provenance"]

#: The load-time rules :meth:`rwe.data.EvaluationSet.from_frame` applies to every evaluation
#: table (rwe/data/_validate.py), in plain words.
VALIDATION_RULES = (
    "the table is not empty",
    "every column named by a role is present",
    "the label is binary 0/1 (or bool) without missing values",
    "scores are numeric probabilities in [0, 1] without missing values",
    "timestamps parse as ISO 8601",
    "survival times are non-negative (survival outcomes)",
    "ids are present and unique",
    "patient ids are present",
    "numeric features hold numbers only (a few text cells in a numeric column are an error)",
)

#: Role of the evaluation table's own file in :attr:`ProvenanceResult.files`.
EVALUATION_DATA = "evaluation data"
MISSING_COLUMNS = ["role", "column", "derived", "n", "n_missing", "fraction"]
_BY_TIME_COLUMNS = ["quarter", "n"]
_MISSING_FP = ("kind", "format", "file", "path", "bytes", "sha256", "query", "rows", "columns")


@dataclass(frozen=True, eq=False)
class ProvenanceResult:
    """Provenance and quality counts of an evaluation table (:func:`provenance`).

    Attributes
    ----------
    files : tuple of dict
        One record per input file: ``role`` plus the source's fingerprint (``kind``,
        ``format``, ``file``, ``path``, ``bytes``, ``sha256``, ``query``, ``rows``,
        ``columns``); ``sha256`` and ``bytes`` are None for a file that does not exist.
    counts : dict
        ``rows``; ``patients`` (patient id role), ``events`` and ``prevalence`` (label),
        ``sites``, ``equipment_types``; ``model_versions``.
    period : dict or None
        ``first``, ``last`` timestamp and the ``column`` (timestamp role).
    by_site_quarter : pandas.DataFrame
        Rows (``n``) and events per calendar quarter (``"2024-Q1"``,
        :func:`rwe.data.calendar_window`), and per site when the site role is set.
    missingness : pandas.DataFrame
        Per column role: ``role, column, derived, n, n_missing, fraction``.
    validation : dict
        ``status`` (``"passed"``: the table is an EvaluationSet), ``rules``
        (:data:`VALIDATION_RULES`) and ``source`` (the table's name).
    missingness_threshold : float or None
        Fraction of missing values at or above which a column is reported
        (:attr:`findings`); None reports none.
    """

    files: tuple[dict[str, Any], ...]
    counts: dict[str, Any]
    period: dict[str, Any] | None
    by_site_quarter: pd.DataFrame
    missingness: pd.DataFrame
    validation: dict[str, Any]
    missingness_threshold: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (tables as lists of records), with the typed verdicts and findings."""
        from rwe._results import json_safe

        return {"files": json_safe(list(self.files)), "counts": json_safe(self.counts),
                "period": json_safe(self.period), "by_site_quarter": json_safe(
                    self.by_site_quarter), "missingness": json_safe(self.missingness),
                "validation": json_safe(self.validation),
                "missingness_threshold": self.missingness_threshold,
                "verdicts": [v.to_dict() for v in self.verdicts],
                "findings": [f.to_dict() for f in self.findings]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ProvenanceResult:
        """The inverse of :meth:`to_dict` (verdicts and findings are derived again)."""
        import pandas as pd

        return cls(files=tuple(dict(f) for f in d.get("files") or ()),
                   counts=dict(d.get("counts") or {}), period=d.get("period"),
                   by_site_quarter=pd.DataFrame(d.get("by_site_quarter") or [],
                                                columns=_BY_TIME_COLUMNS
                                                if not d.get("by_site_quarter") else None),
                   missingness=pd.DataFrame(d.get("missingness") or [],
                                            columns=MISSING_COLUMNS),
                   validation=dict(d.get("validation") or {}),
                   missingness_threshold=d.get("missingness_threshold"))

    @property
    def verdicts(self) -> tuple[Verdict, ...]:
        """The load-time validation check (``pass``: the table passed every rule of
        :data:`VALIDATION_RULES`, or it would not be an EvaluationSet)."""
        from rwe._evidence import STATUS_NOT_EVALUATED, STATUS_PASS, Verdict, verdict_id

        rules = list(self.validation.get("rules") or VALIDATION_RULES)
        passed = self.validation.get("status") == "passed"
        return (Verdict(
            id=verdict_id("provenance", "check", {"rules": rules}, "validation"),
            section="provenance", kind="check",
            criterion="the evaluation data pass rwe's load-time validation rules",
            status=STATUS_PASS if passed else STATUS_NOT_EVALUATED,
            reason=(f"{len(rules)} rule families checked on every row; no failure" if passed
                    else "the data were not validated"),
            source="data.columns"),)

    @property
    def findings(self) -> tuple[Finding, ...]:
        """What was read (``provenance.data``) and each column whose missing fraction reaches
        :attr:`missingness_threshold` (``provenance.missing``)."""
        from rwe._evidence import Finding

        out = []
        first = self.files[0] if self.files else {}
        period = self.period or {}
        counts = {k: self.counts[k] for k in ("rows", "patients") if k in self.counts}
        span = (f"{str(period.get('first'))[:10]} to {str(period.get('last'))[:10]}" if period
                else "period not recorded (no timestamp role)")
        out.append(Finding("provenance.data" if "patients" in counts else "provenance.data_rows",
                           subject={"file": first.get("file") or "table"},
                           values={"sha256": (first.get("sha256") or "n/a")[:12],
                                   "period": span}, counts=counts))
        thr = self.missingness_threshold
        if thr is not None and len(self.missingness):
            for r in self.missingness.to_dict("records"):
                if r["fraction"] is not None and r["fraction"] == r["fraction"] \
                        and r["fraction"] >= thr and r["n_missing"]:
                    out.append(Finding(
                        "provenance.missing", subject={"column": r["column"], "role": r["role"]},
                        values={"fraction": float(r["fraction"]), "threshold": float(thr)},
                        counts={"n": int(r["n"]), "n_missing": int(r["n_missing"]),
                                "n_present": int(r["n"]) - int(r["n_missing"])},
                        severity="warning"))
        return tuple(out)

    def to_frame(self) -> pd.DataFrame:
        """The counts and the period as a two-column table (``fact``, ``value``)."""
        import pandas as pd

        rows: list[tuple[str, Any]] = [(k, v if not isinstance(v, list) else ", ".join(v))
                                       for k, v in self.counts.items()]
        if self.period is not None:
            rows += [("first timestamp", self.period["first"]),
                     ("last timestamp", self.period["last"])]
        return pd.DataFrame(rows, columns=["fact", "value"])

    def _repr_html_(self) -> str:
        return self.to_frame().to_html(index=False)


def _path_record(role: str, path: str | Path) -> dict[str, Any]:
    """Fingerprint of a file given by path (any format; None hashes when absent)."""
    from rwe.data._sources import source_from_path
    from rwe.exceptions import RWEError

    p = Path(path)
    try:
        return {"role": role, **source_from_path(p).fingerprint()}
    except RWEError:  # unknown suffix (a reference file), missing or unreadable file
        pass
    rec: dict[str, Any] = dict.fromkeys(_MISSING_FP)
    rec.update(kind="file", format=p.suffix.lstrip(".").lower() or None, file=p.name,
               path=str(p.resolve()))
    if p.is_file():
        from rwe.data._sources import file_sha256

        rec.update(bytes=p.stat().st_size, sha256=file_sha256(p))
    return {"role": role, **rec}


def _file_records(evset: EvaluationSet,
                  sources: Mapping[str, Source | str | Path | None] | None) -> list[dict]:
    from rwe.data._sources import Source

    out: list[dict[str, Any]] = []
    if evset.data_source is not None:
        out.append({"role": EVALUATION_DATA, **evset.data_source.fingerprint()})
    for role, src in (sources or {}).items():
        if src is None or (role == EVALUATION_DATA and out):
            continue
        out.append({"role": role, **src.fingerprint()} if isinstance(src, Source)
                   else _path_record(role, src))
    return out


def provenance(evset: EvaluationSet, *,
               sources: Mapping[str, Source | str | Path | None] | None = None,
               missingness_threshold: float | None = None) -> ProvenanceResult:
    """Provenance and quality counts of an evaluation table (FDA AI-DSF PRV-1, PRV-2, PRV-4,
    PRV-7): files and sha256, row / patient / event counts, period covered, rows per site and
    quarter, missing values per column role, validation rules passed.

    Parameters
    ----------
    evset : EvaluationSet
        The validated table. Its own source (``evset.data_source``), when it has one, is the
        first file, with role ``"evaluation data"``.
    sources : mapping of str to Source or path, optional
        Further inputs to fingerprint, by role (e.g. ``{"reference population": path}``);
        a path that does not exist is recorded with no hash. ``"evaluation data"`` here is used
        only when ``evset`` has no source of its own (a DataFrame).

    Returns
    -------
    ProvenanceResult
        Counts only: no row and no identifier.
    """
    import numpy as np
    import pandas as pd

    frame = evset.frame
    roles = evset.roles
    n = int(len(frame))
    counts: dict[str, Any] = {"rows": n}
    if roles.patient_id:
        counts["patients"] = int(frame[roles.patient_id].nunique())
    if roles.label:
        y = frame[roles.label].to_numpy()
        counts["events"] = int(np.sum(y == 1))
        counts["prevalence"] = float(np.mean(y == 1)) if len(y) else None
    if roles.site:
        counts["sites"] = int(frame[roles.site].nunique())
    if roles.equipment:
        counts["equipment_types"] = int(frame[roles.equipment].nunique())
    counts["model_versions"] = list(roles.scores)

    period = None
    by_time = pd.DataFrame(columns=["quarter", "n"])
    if roles.timestamp:
        ts = frame[roles.timestamp]
        period = {"first": ts.min(), "last": ts.max(), "column": roles.timestamp}
        keys = {"quarter": evset.window("quarter").to_numpy()}
        if roles.site:
            keys = {"site": frame[roles.site].astype(str).to_numpy(), **keys}
        grp = pd.DataFrame(keys)
        if roles.label:
            grp["events"] = (frame[roles.label].to_numpy() == 1).astype(int)
        agg = grp.groupby(list(keys), sort=True, observed=True)
        by_time = agg.size().rename("n").reset_index()
        if roles.label:
            by_time["events"] = agg["events"].sum().to_numpy()
        by_time["quarter"] = by_time["quarter"].astype(str)

    role_cols: list[tuple[str, str]] = []
    for name in ("id", "patient_id", "label", "time", "event", "timestamp", "site", "equipment"):
        col = getattr(roles, name)
        if col:
            role_cols.append((name.replace("_", " "), col))
    role_cols += [(f"score (version {v})", c) for v, c in roles.scores.items()]
    role_cols += [("attribute", c) for c in roles.attributes]
    role_cols += [("feature", c) for c in roles.features]
    derived = set(evset.derived)
    missing = []
    for role, col in role_cols:
        if col not in frame.columns:
            continue
        k = int(frame[col].isna().sum())
        missing.append({"role": role, "column": col, "derived": col in derived, "n": n,
                        "n_missing": k, "fraction": k / n if n else None})
    return ProvenanceResult(
        files=tuple(_file_records(evset, sources)), counts=counts, period=period,
        by_site_quarter=by_time,
        missingness=pd.DataFrame(missing, columns=MISSING_COLUMNS),
        validation={"status": "passed", "rules": list(VALIDATION_RULES),
                    "source": evset.source if isinstance(evset.source, str) else None},
        missingness_threshold=missingness_threshold)


def _register_templates() -> None:
    from rwe._evidence import register_finding_template

    register_finding_template(
        "provenance.data",
        "Evaluation data {file} (sha256 {sha256}...): {rows:,} rows, {patients:,} patients, "
        "{period}; validation passed.",
        "Evaluation data {file} (sha256 {sha256}...): {period}; row or patient count below "
        "{k} (suppressed); validation passed.")
    register_finding_template(
        "provenance.data_rows",
        "Evaluation data {file} (sha256 {sha256}...): {rows:,} rows, {period}; validation "
        "passed.",
        "Evaluation data {file} (sha256 {sha256}...): {period}; row count below {k} "
        "(suppressed); validation passed.")
    register_finding_template(
        "provenance.missing", "{column} ({role}) missing for {fraction:.1%} of rows.",
        "{column} ({role}) missing for some rows (count below {k}: suppressed).")


_register_templates()
