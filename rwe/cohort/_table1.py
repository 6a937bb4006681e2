"""Table 1 with ``tableone``: overall and by stratum (site, equipment)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rwe._evidence import Finding, register_finding_template
from rwe._results import ResultMixin, json_safe
from rwe.exceptions import InvalidParameterError

__all__ = ["TableOneResult", "table_one", "table_one_from_protocol", "TABLE_COLUMNS",
           "COUNT_COLUMNS"]

#: Columns of :attr:`TableOneResult.table`: tableone's formatted cells, one per stratum.
TABLE_COLUMNS = ["by", "stratum", "variable", "statistic", "level", "value"]
#: Columns of :attr:`TableOneResult.counts`: the count behind every categorical cell.
COUNT_COLUMNS = ["by", "stratum", "variable", "level", "n"]
OVERALL = "Overall"
MISSING_LEVEL = "missing"

register_finding_template(
    "cohort.table1",
    "Table 1: {variables} variables overall and by {strata} ({rows:,} rows).",
    "Table 1: {variables} variables overall and by {strata}.")


@dataclass(frozen=True, eq=False)
class TableOneResult(ResultMixin):
    """Cohort characteristics, overall and by stratum.

    Attributes
    ----------
    table : pandas.DataFrame
        ``by`` (``"overall"`` or the stratifying column), ``stratum`` (``"Overall"`` or its
        level), ``variable``, ``statistic`` (``"n"``, ``"n (%)"``, ``"mean (SD)"``,
        ``"median [Q1,Q3]"``, ``"missing"``), ``level`` (a category, else ``""``) and
        ``value`` (tableone's formatted cell, e.g. ``"486 (51.1)"``).
    counts : pandas.DataFrame
        ``by, stratum, variable, level, n``: rows of each stratum (``variable`` ``"n"``) and of
        each category (missing values as level ``"missing"``).
    continuous, categorical, nonnormal : tuple of str
    strata : dict
        ``{"site": column, "equipment": column}`` (the roles that exist).
    n : int
    outcome : str or None
        The binary outcome column (its distribution is the prevalence).
    """

    table: pd.DataFrame
    counts: pd.DataFrame
    continuous: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    nonnormal: tuple[str, ...] = ()
    strata: dict[str, str] = field(default_factory=dict)
    n: int = 0
    outcome: str | None = None

    def to_frame(self) -> pd.DataFrame:
        return self.table

    @property
    def verdicts(self) -> tuple:
        return ()

    @property
    def findings(self) -> tuple[Finding, ...]:
        strata = ", ".join(self.strata) or "no stratum"
        return (Finding("cohort.table1", values={"variables": len(self.continuous)
                                                 + len(self.categorical), "strata": strata},
                        counts={"rows": self.n}),)

    def to_dict(self) -> dict[str, Any]:
        return {"table": json_safe(self.table), "counts": json_safe(self.counts),
                "continuous": list(self.continuous), "categorical": list(self.categorical),
                "nonnormal": list(self.nonnormal), "strata": dict(self.strata),
                "n": int(self.n), "outcome": self.outcome}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TableOneResult:
        return cls(table=pd.DataFrame(d.get("table") or [], columns=TABLE_COLUMNS),
                   counts=pd.DataFrame(d.get("counts") or [], columns=COUNT_COLUMNS),
                   continuous=tuple(d.get("continuous") or ()),
                   categorical=tuple(d.get("categorical") or ()),
                   nonnormal=tuple(d.get("nonnormal") or ()), strata=dict(d.get("strata") or {}),
                   n=int(d.get("n") or 0), outcome=d.get("outcome"))


def _skewed(s: pd.Series) -> bool:
    """Summarise by median [Q1,Q3] rather than mean (SD): |skewness| > 1 (a common rule of
    thumb, e.g. Bulmer 1979) or many ties at zero (pack-years of never smokers)."""
    x = pd.to_numeric(s, errors="coerce").dropna()
    if len(x) < 3:
        return False
    return bool(abs(x.skew()) > 1 or (x == 0).mean() > 0.2)


def _cells(frame: pd.DataFrame, continuous: list[str], categorical: list[str],
           nonnormal: list[str]) -> list[tuple[str, str, str, str, str | None]]:
    """tableone's one-column table of ``frame``: ``(variable, statistic, level, value,
    missing)`` per row, ``missing`` being its Missing column (None where empty)."""
    from tableone import TableOne

    with warnings.catch_warnings():  # tableone's notes on its own defaults, not on the data
        warnings.simplefilter("ignore")
        t1 = TableOne(frame, columns=continuous + categorical, categorical=categorical,
                      nonnormal=nonnormal, groupby=None, missing=True, overall=True,
                      include_null=True, decimals=1)
    tab = t1.tableone.copy()
    tab.columns = [c[-1] if isinstance(c, tuple) else c for c in tab.columns]
    cells = []
    for (label, level), rec in zip(tab.index, tab.to_dict("records"), strict=True):
        variable, _, statistic = str(label).rpartition(", ")
        if not variable:
            variable, statistic = str(label), "n"
        missing = rec.get("Missing")
        cells.append((variable, statistic, "" if level in ("", None) else str(level),
                      str(rec[OVERALL]),
                      None if missing in ("", None) or variable == "n" else str(missing)))
    return cells


def _tableone(frame: pd.DataFrame, continuous: list[str], categorical: list[str],
              nonnormal: list[str], by: str | None, *, overall: bool,
              cells: list[tuple[str, str, str, str, str | None]]) -> pd.DataFrame:
    """tableone's table as tidy rows: the Overall column (``by="overall"``, with the missing
    counts) when ``overall``, and one column per level of ``by``.

    Each stratum is its own ``TableOne`` call on the stratum's rows. This gives the table
    ``TableOne(groupby=by)`` gives, cell for cell and in its order (tests/cohort/
    test_table1.py), without its cost: tableone's grouped categorical summary converts every
    row of the whole frame to text once per group (benchmarks/README.md, bench_dossier). A
    category absent from a stratum gets the cell the grouped call gives it, ``0 (0.0)``.
    ``cells``: :func:`_cells` of the whole frame (computed once for every ``by``)."""
    strata = [] if by is None else [
        (stratum, {(v, s, lv): value for v, s, lv, value, _ in
                   _cells(d, continuous, categorical, nonnormal)})
        for stratum, d in _strata(frame, by)]
    rows: list[dict[str, str]] = []
    for variable, statistic, level, value, missing in cells:
        if overall and missing is not None:
            rows.append({"by": "overall", "stratum": OVERALL, "variable": variable,
                         "statistic": "missing", "level": "", "value": missing})
        if overall:
            rows.append({"by": "overall", "stratum": OVERALL, "variable": variable,
                         "statistic": statistic, "level": level, "value": value})
        for stratum, got in strata:
            cell = got.get((variable, statistic, level))
            if cell is None and variable in categorical:
                cell = "0 (0.0)"  # tableone's cell for a zero count at decimals=1
            rows.append({"by": by, "stratum": stratum, "variable": variable,
                         "statistic": statistic, "level": level,
                         "value": "" if cell is None else cell})
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def _strata(frame: pd.DataFrame, by: str) -> list[tuple[str, pd.DataFrame]]:
    """The rows of each level of ``by`` in tableone's order (sorted; rows without a level are
    in no stratum)."""
    return [(str(g), d) for g, d in frame.groupby(by, sort=True, observed=True)]


def _text(s: pd.Series) -> pd.Series:
    """Each value as ``str(value)``, missing values as None (tableone sorts and labels
    categories as text), computed once per distinct value."""
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    labels = np.array([str(u) for u in uniques] + [None], dtype=object)
    return pd.Series(labels[codes], index=s.index, name=s.name, dtype=object)


def _counts(frame: pd.DataFrame, categorical: list[str], by: str | None) -> pd.DataFrame:
    groups = [(OVERALL, frame)] if by is None else _strata(frame, by)
    rows = []
    for stratum, d in groups:
        rows.append({"by": by or "overall", "stratum": stratum, "variable": "n", "level": "",
                     "n": int(len(d))})
        for c in categorical:
            vc = d[c].fillna(MISSING_LEVEL).value_counts(sort=True)
            for level, n in vc.items():
                rows.append({"by": by or "overall", "stratum": stratum, "variable": c,
                             "level": str(level), "n": int(n)})
    return pd.DataFrame(rows, columns=COUNT_COLUMNS)


def table_one(evset: Any, *, continuous: Sequence[str] = (), categorical: Sequence[str] = (),
              strata: Mapping[str, str] | None = None, outcome: str | None = None
              ) -> TableOneResult:
    """Table 1 of an evaluation set: overall and per stratum (e.g. site, equipment).

    Parameters
    ----------
    evset : EvaluationSet or pandas.DataFrame
    continuous, categorical : sequence of str
        Numeric features (mean (SD), or median [Q1,Q3] when skewed) and categorical
        attributes (n (%), missing values as their own row).
    strata : mapping of str to str, optional
        ``{"site": column, "equipment": column}``: one table per stratifying column.
    outcome : str, optional
        A binary outcome column shown as a categorical row (its prevalence).

    Returns
    -------
    TableOneResult

    Notes
    -----
    Computed by ``tableone.TableOne`` (Pollard TJ, Johnson AEW, Raffa JD, Mark RG.
    tableone: An open source Python package for producing summary statistics for research
    papers. JAMIA Open 2018;1(1):26-31). Percentages are of the stratum's rows, missing
    values included (``include_null``); SD with ddof = 1; quartiles by linear interpolation.
    """
    frame = evset.frame if hasattr(evset, "frame") else evset
    continuous = [c for c in continuous if c in frame.columns]
    categorical = [c for c in categorical if c in frame.columns]
    if outcome is not None and outcome in frame.columns and outcome not in categorical:
        categorical = categorical + [outcome]
    strata = {k: v for k, v in (strata or {}).items() if v and v in frame.columns}
    missing = [c for c in (*continuous, *categorical) if c not in frame.columns]
    if not continuous and not categorical:
        raise InvalidParameterError("table_one: no variable to describe; pass continuous= "
                                    "or categorical= with columns of the data")
    if missing:  # pragma: no cover - filtered above
        raise InvalidParameterError(f"table_one: columns not found: {missing}")
    nonnormal = [c for c in continuous if _skewed(frame[c])]
    cols = list(dict.fromkeys([*continuous, *categorical, *strata.values()]))
    data = frame[cols].copy()
    for c in categorical:  # categories as text: tableone sorts and labels them as such
        data[c] = _text(data[c])
    # one tableone call for all rows and one per stratum; the first stratifying column's
    # table also carries the overall column
    cells = _cells(data, continuous, categorical, nonnormal)
    tables = [_tableone(data, continuous, categorical, nonnormal, col, overall=i == 0,
                        cells=cells) for i, col in enumerate(strata.values())] or [
        _tableone(data, continuous, categorical, nonnormal, None, overall=True, cells=cells)]
    counts = [_counts(data, categorical, None)] + [_counts(data, categorical, col)
                                                    for col in strata.values()]
    return TableOneResult(table=pd.concat(tables, ignore_index=True),
                          counts=pd.concat(counts, ignore_index=True),
                          continuous=tuple(continuous), categorical=tuple(categorical),
                          nonnormal=tuple(nonnormal), strata=strata, n=int(len(frame)),
                          outcome=outcome if outcome in categorical else None)


def table_one_from_protocol(protocol: Any, evset: Any) -> TableOneResult:
    """Table 1 of a protocol's data: its features, attributes (and derived ones, e.g. age
    bands) and outcome, overall, per site and per equipment."""
    roles = protocol.data.columns
    frame = evset.frame if hasattr(evset, "frame") else evset
    attrs = list(dict.fromkeys([*roles.attributes, *getattr(evset, "derived", ())]))
    return table_one(evset, continuous=list(roles.features),
                     categorical=[a for a in attrs if a in frame.columns],
                     strata={"site": roles.site, "equipment": roles.equipment},
                     outcome=roles.label)
