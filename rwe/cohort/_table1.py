"""Table 1 in tableone's format (its cells, without its per-row cost): overall and by stratum."""

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


#: tableone's level for missing values of a categorical variable (``include_null=True``).
NULL_LABEL = "None"


@dataclass(frozen=True)
class _Levels:
    """A categorical column as codes into the text of its distinct values (``str`` of each;
    the code ``len(texts)`` for missing values): the levels tableone shows, obtained without
    converting every row to text."""

    codes: np.ndarray
    texts: list[str]

    @classmethod
    def of(cls, s: pd.Series) -> _Levels:
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
        codes = np.asarray(codes, dtype=np.int64)
        codes[codes < 0] = len(uniques)
        return cls(codes, [str(u) for u in uniques])

    def tally(self, rows: np.ndarray | None, missing: str, *, first: bool = True
              ) -> dict[str, list[int]]:
        """``{level: [count, first row]}`` over ``rows`` (ascending positions, None for all),
        missing values as ``missing``, values with the same text as one level, levels in
        order of first appearance (with ``first=False``: levels with a count, in code order,
        and no first row)."""
        codes = self.codes if rows is None else self.codes[rows]
        counts = np.bincount(codes, minlength=len(self.texts) + 1)
        seen = pd.unique(codes) if first else np.flatnonzero(counts)
        out: dict[str, list[int]] = {}
        for i, code in enumerate(seen):
            text = missing if code == len(self.texts) else self.texts[code]
            out.setdefault(text, [0, i])[0] += int(counts[code])
        return out


def _cells(numeric: Mapping[str, np.ndarray], levels: Mapping[str, _Levels],
           nonnormal: list[str], n: int, rows: np.ndarray | None = None
           ) -> list[tuple[str, str, str, str, str | None]]:
    """tableone's one-column table of ``n`` rows (all, or the positions ``rows``):
    ``(variable, statistic, level, value, missing)`` per row, ``missing`` being its Missing
    column (None where empty). ``numeric``: the continuous columns as
    ``pandas.to_numeric(errors="coerce")`` values.

    The cells of ``tableone.TableOne(frame, columns=continuous + categorical, categorical=
    ..., nonnormal=..., missing=True, include_null=True, decimals=1)`` (Pollard et al. 2018),
    computed with tableone's formulas but without its per-row Python loop (it converts every
    value of every categorical column to text, twice per call, whatever the column's dtype:
    ~30 s of the dossier's Table 1 at 10^6 rows; benchmarks/README.md): the ``n`` row; per
    continuous variable ``"{:.1f} ({:.1f})"`` of ``numpy.nanmean`` and ``numpy.nanstd``
    (ddof = 1; 0 for one row), or ``"{:.1f} [{:.1f},{:.1f}]"`` of ``numpy.nanmedian`` and
    ``numpy.nanpercentile`` 25 and 75 when non-normal, with its missing count; per
    categorical variable one row per level (sorted text, missing values as ``"None"``),
    ``"{count} ({:.1f})"`` of ``count / n * 100``. Equal to tableone's table cell for cell
    (tests/cohort/test_table1.py compares them, also on the demo data)."""
    cells: list[tuple[str, str, str, str, str | None]] = [("n", "n", "", str(n), None)]
    with warnings.catch_warnings():  # an all-missing column: nan cells, as tableone's
        warnings.simplefilter("ignore", RuntimeWarning)
        for c, values in numeric.items():
            v = values if rows is None else values[rows]
            if c in nonnormal:
                med, q1, q3 = np.nanmedian(v), np.nanpercentile(v, 25), np.nanpercentile(v, 75)
                value = f"{med:.1f} [{q1:.1f},{q3:.1f}]"
                statistic = "median [Q1,Q3]"
            else:
                sd = 0.0 if len(v) == 1 else np.nanstd(v, ddof=1)
                value, statistic = f"{np.nanmean(v):.1f} ({sd:.1f})", "mean (SD)"
            cells.append((c, statistic, "", value, str(int(pd.isna(v).sum()))))
    for c, lv in levels.items():
        tally = lv.tally(rows, NULL_LABEL, first=False)
        for level in sorted(tally):
            freq = tally[level][0]
            cells.append((c, "n (%)", level, f"{freq} ({freq / n * 100:.1f})", None))
    return cells


def _tableone(numeric: Mapping[str, np.ndarray], levels: Mapping[str, _Levels],
              nonnormal: list[str], n: int, by: str | None,
              strata: list[tuple[str, np.ndarray]], *, overall: bool,
              cells: list[tuple[str, str, str, str, str | None]]) -> pd.DataFrame:
    """tableone's table as tidy rows: the Overall column (``by="overall"``, with the missing
    counts) when ``overall``, and one column per stratum of ``by`` (:func:`_strata`).

    Each stratum is its own one-column table of the stratum's rows (:func:`_cells`). This
    gives the table ``TableOne(groupby=by)`` gives, cell for cell and in its order (tests/
    cohort/test_table1.py). A category absent from a stratum gets the cell the grouped call
    gives it, ``0 (0.0)``. ``cells``: :func:`_cells` of all rows (computed once for every
    ``by``)."""
    got_strata = [
        (stratum, {(v, s, lv): value for v, s, lv, value, _ in
                   _cells(numeric, levels, nonnormal, len(rows), rows)})
        for stratum, rows in strata]
    out: list[dict[str, str]] = []
    for variable, statistic, level, value, missing in cells:
        if overall and missing is not None:
            out.append({"by": "overall", "stratum": OVERALL, "variable": variable,
                        "statistic": "missing", "level": "", "value": missing})
        if overall:
            out.append({"by": "overall", "stratum": OVERALL, "variable": variable,
                        "statistic": statistic, "level": level, "value": value})
        for stratum, got in got_strata:
            cell = got.get((variable, statistic, level))
            if cell is None and variable in levels:
                cell = "0 (0.0)"  # tableone's cell for a zero count at decimals=1
            out.append({"by": by, "stratum": stratum, "variable": variable,
                        "statistic": statistic, "level": level,
                        "value": "" if cell is None else cell})
    return pd.DataFrame(out, columns=TABLE_COLUMNS)


def _strata(frame: pd.DataFrame, by: str, levels: Mapping[str, _Levels]
            ) -> list[tuple[str, np.ndarray]]:
    """The rows (ascending positions) of each level of ``by`` in the order of ``groupby(by,
    sort=True, observed=True)``; rows without a level are in no stratum. A stratifying
    column that is also a categorical variable is grouped by its text (as tableone sees
    it)."""
    if by in levels:
        lv = levels[by]
        codes = np.full(len(lv.texts) + 1, -1, dtype=np.int64)
        names = sorted(set(lv.texts))
        for i, t in enumerate(lv.texts):
            codes[i] = names.index(t)
        codes = codes[lv.codes]
    else:
        codes, uniques = pd.factorize(frame[by], sort=True, use_na_sentinel=True)
        names = [str(u) for u in uniques]
    order = np.argsort(codes, kind="stable")  # rows of each stratum, in their order
    sizes = np.bincount(codes[codes >= 0], minlength=len(names))
    ends = np.cumsum(sizes) + int((codes < 0).sum())
    return [(name, order[end - size:end]) for name, size, end in
            zip(names, sizes, ends, strict=True) if size]


def _counts(levels: Mapping[str, _Levels], n: int, strata: list[tuple[str, np.ndarray]] | None,
            by: str | None) -> pd.DataFrame:
    """Rows and category counts per stratum (all rows when ``strata`` is None), categories in
    ``value_counts`` order (count descending, ties in order of first appearance), missing
    values as ``"missing"``."""
    groups: list[tuple[str, np.ndarray | None]] = [(OVERALL, None)] if strata is None else \
        list(strata)
    rows = []
    for stratum, rows_of in groups:
        rows.append({"by": by or "overall", "stratum": stratum, "variable": "n", "level": "",
                     "n": n if rows_of is None else len(rows_of)})
        for c, lv in levels.items():
            tally = lv.tally(rows_of, MISSING_LEVEL)
            for level in sorted(tally, key=lambda t: (-tally[t][0], tally[t][1])):
                rows.append({"by": by or "overall", "stratum": stratum, "variable": c,
                             "level": level, "n": tally[level][0]})
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
    The cells of ``tableone.TableOne`` (Pollard TJ, Johnson AEW, Raffa JD, Mark RG.
    tableone: An open source Python package for producing summary statistics for research
    papers. JAMIA Open 2018;1(1):26-31), computed with its formulas from category codes and
    numpy summaries (:func:`_cells`; cross-checked cell for cell against tableone in the
    tests), which costs a fraction of tableone's per-row text conversion. Percentages are of the stratum's rows, missing
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
    numeric = {c: np.asarray(pd.to_numeric(frame[c], errors="coerce").values)
               for c in continuous}
    levels = {c: _Levels.of(frame[c]) for c in categorical}
    n = len(frame)
    by = {col: _strata(frame, col, levels) for col in strata.values()}
    # one table of all rows and one per stratum; the first stratifying column's table also
    # carries the overall column
    cells = _cells(numeric, levels, nonnormal, n)
    tables = [_tableone(numeric, levels, nonnormal, n, col, by[col], overall=i == 0,
                        cells=cells) for i, col in enumerate(strata.values())] or [
        _tableone(numeric, levels, nonnormal, n, None, [], overall=True, cells=cells)]
    counts = [_counts(levels, n, None, None)] + [_counts(levels, n, by[col], col)
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
