"""Approval of a model update: the candidate against the current, the original and every
approved version on the same sequestered cases, under pre-specified acceptance criteria, with
an error budget across updates and a tamper-evident ledger (EVIDENCE.md CHG-3, CHG-5..CHG-7,
PRV-6, PRV-7; METHODS.md C7).

The decision rule (see ``DESIGN.md`` in this package):

1. *Comparators.* The current version (the last one the ledger approved, else the plan's
   ``current``), the original cleared version and every version approved since. A
   non-inferiority criterion must hold against each of them (``against: all``, the default):
   comparing only with the last version lets small losses accumulate (bio-creep; Feng,
   Emerson & Simon 2021).
2. *Level.* The update is tested at one-sided level ``alpha_t``: the fixed ``alpha``, or the
   level the online procedure (LORD++, alpha-investing, SAFFRON) gives update ``t`` from the
   p values of the earlier comparisons in the ledger. Every interval is two-sided at
   ``1 - 2 alpha_t``.
3. *Cells.* Each criterion is judged overall and/or in every pre-specified subgroup with at
   least ``min_n`` rows and ``min_events`` events of the kind the metric needs (cases for
   sensitivity, controls for specificity, both for AUROC and calibration); smaller cells are
   outside the criterion and listed as such.
4. *Judgement.* A cell passes when the lower bound of the improvement exceeds ``-margin``
   (non-inferiority) or 0 (superiority), or the candidate's lower bound exceeds the goal. A
   criterion passes when every cell passes against every comparator (an intersection-union
   test: no adjustment needed for the joint claim); ``multiplicity: bonferroni`` or ``holm``
   adjusts across the criterion's cells when the protocol asks for simultaneous claims.
5. *Gate-keeping.* Steps are tested in the protocol's order; the criteria of one step are
   co-primary (all must pass). After a step that does not pass, later steps are not evaluated
   (their estimates are still shown).
6. *Verdict.* APPROVE when every required criterion passes, REJECT when one fails,
   INCONCLUSIVE otherwise. The update's p value for the online procedure is the largest
   p value of its required cells (the intersection-union p value), so APPROVE happens exactly
   when that p value is at most ``alpha_t``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
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
from rwe._results import GROUP_SEP, Interval, canonical_sha256
from rwe._validation import check_choice, check_int, check_real
from rwe.change_control import _templates  # noqa: F401 - registers the finding templates
from rwe.exceptions import DataValidationError, InvalidParameterError, LedgerError

from ._budget import budget_summary, next_level, online_record, online_settings
from ._hashes import case_order, package_versions, score_sha256
from ._hashes import test_set_sha256 as _test_set_hash
from ._ledger import Ledger
from ._paired import CellData, Grouping, cell_rows, compare_cells, roc_points
from ._result import (
    APPROVE,
    CRITERIA_COLUMNS,
    CUMULATIVE_COLUMNS,
    INCONCLUSIVE,
    REJECT,
    ROC_COLUMNS,
    TABLE_COLUMNS,
    ComparisonResult,
)

__all__ = ["compare_models", "compare_from_protocol", "compare_plan", "plan_sha256", "MULTIPLICITY",
           "CLUSTER_CHOICES", "MSG_NEEDS_ROWS"]

MULTIPLICITY = ("none", "bonferroni", "holm")
CLUSTER_CHOICES = ("auto", "patients", "none")
MSG_NEEDS_ROWS = ("compare_models needs rows: a paired comparison uses both versions' scores "
                  "on the same cases, and a Summary keeps one score histogram per version, "
                  "not their joint distribution; pass the EvaluationSet")
MSG_NO_SCORES = ("{role} version {v!r} has no scores on the test set: versions with scores "
                 "are {have}")
MSG_CASE_SETS = ("scores of version {v!r} are not on the test set's cases: {missing} of the "
                 "{n:,} test-set cases have no score (e.g. {eg}){extra}; the two versions "
                 "must be scored on the same cases")



# ----------------------------------------------------------------------------- inputs
def _norm_by(by: Any) -> list[tuple[str, ...]]:
    if by is None or by is False:
        return []
    if isinstance(by, str):
        by = [by]
    out = []
    for g in by:
        if isinstance(g, str):
            out.append((g,))
        elif isinstance(g, Sequence) and g and all(isinstance(a, str) for a in g):
            out.append(tuple(g))
        else:
            raise InvalidParameterError(
                f"by must hold attribute names or tuples of names, got {g!r}")
    return list(dict.fromkeys(out))


def _criteria(criteria, margins, order, has_subgroups):
    from pydantic import ValidationError

    from rwe.protocol._schema import CHANGE_CONTROL_METRICS, CriterionSpec

    out: list[CriterionSpec] = []
    for m, v in (margins or {}).items():
        out.append(CriterionSpec(metric=m, test="noninferiority",
                                 margin=check_real(v, f"margins[{m!r}]", low=0.0),
                                 scope="all" if has_subgroups else "overall"))
    for i, c in enumerate(criteria or ()):
        if isinstance(c, CriterionSpec):
            out.append(c)
            continue
        if not isinstance(c, Mapping):
            raise InvalidParameterError(f"criteria[{i}] must be a dict or a CriterionSpec, "
                                        f"got {type(c).__name__}")
        try:
            out.append(CriterionSpec.model_validate(dict(c)))
        except ValidationError as err:
            e = err.errors()[0]
            loc = ".".join(str(x) for x in e["loc"])
            raise InvalidParameterError(f"criteria[{i}]{'.' + loc if loc else ''}: "
                                        f"{e['msg'].removeprefix('Value error, ')}") from None
    if not out:
        raise InvalidParameterError("give at least one acceptance criterion (margins or "
                                    "criteria)")
    names = [c.key for c in out]
    for c in out:
        if c.metric not in CHANGE_CONTROL_METRICS:
            raise InvalidParameterError(
                f"criterion {c.key!r}: change control compares "
                f"{', '.join(CHANGE_CONTROL_METRICS)}; got metric {c.metric!r}")
        if c.test == "goal" and c.metric.startswith("calibration"):
            raise InvalidParameterError(f"criterion {c.key!r}: {c.metric} has a target "
                                        "value, not a direction: no goal test")
        if c.scope != "overall" and not has_subgroups:
            if c.scope == "subgroups":
                raise InvalidParameterError(f"criterion {c.key!r} has scope 'subgroups' but "
                                            "no subgroups are given (by)")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InvalidParameterError(f"criterion names must be distinct; repeated: {dup}")
    if order:
        steps = [[s] if isinstance(s, str) else list(s) for s in order]
        flat = [n for s in steps for n in s]
        unknown = [n for n in flat if n not in names]
        if unknown or len(flat) != len(set(flat)):
            raise InvalidParameterError(
                f"order must name criteria, each at most once; criteria: {names}, order: "
                f"{steps}")
        steps += [[n] for n in names if n not in flat]  # the unnamed ones follow, in order
    else:
        steps = [names]
    return out, steps


def _ids(evset) -> np.ndarray:
    col = evset.roles.id
    if col is None:
        return np.arange(evset.n).astype(str).astype(object)
    return evset.frame[col].astype("string").to_numpy(dtype=object)


def _extra_scores(evset, v: str, s: Any, ids: np.ndarray) -> np.ndarray:
    """A version's scores given apart from the data: a Series (or one-column DataFrame)
    indexed by case id, joined on the test set's ids; or an array aligned with the rows."""
    if isinstance(s, pd.DataFrame):
        if s.shape[1] != 1:
            raise InvalidParameterError(f"scores[{v!r}]: a DataFrame must have one score "
                                        f"column, got {list(s.columns)}")
        s = s.iloc[:, 0]
    if isinstance(s, pd.Series):
        if evset.roles.id is None:
            raise InvalidParameterError(f"scores[{v!r}] is joined on the case id: the "
                                        "evaluation set needs an id column role")
        idx = s.index.astype("string")
        if idx.duplicated().any():
            dup = idx[idx.duplicated()][:3].tolist()
            raise InvalidParameterError(f"scores[{v!r}]: case ids appear twice, e.g. {dup}")
        ser = pd.Series(s.to_numpy(), index=idx)
        have = ser.index.isin(pd.Index(ids))
        missing = ~pd.Index(ids).isin(ser.index)
        if missing.any() or not have.all():
            eg = ", ".join(map(str, np.asarray(ids)[missing][:3])) or "none"
            extra = (f", and {int((~have).sum()):,} scored case(s) are not in the test set "
                     f"(e.g. {', '.join(map(str, ser.index[~have][:3]))})"
                     if not have.all() else "")
            raise InvalidParameterError(MSG_CASE_SETS.format(
                v=v, missing=f"{int(missing.sum()):,}", n=len(ids), eg=eg, extra=extra))
        out = ser.reindex(pd.Index(ids)).to_numpy(dtype=float)
    else:
        try:
            out = np.asarray(s, dtype=float)
        except (TypeError, ValueError):
            raise InvalidParameterError(f"scores[{v!r}] must be numbers") from None
        if out.shape != (evset.n,):
            raise InvalidParameterError(
                f"scores of version {v!r} have {out.size:,} values for {evset.n:,} test-set "
                "cases: the two versions must be scored on the same cases (pass a Series "
                "indexed by case id to join them)")
    bad = ~np.isfinite(out) | (out < 0) | (out > 1)
    if bad.any():
        raise InvalidParameterError(f"scores of version {v!r} must be probabilities in [0, 1]; "
                                    f"{int(bad.sum())} are not (or missing)")
    return out


def plan_sha256(plan: Mapping[str, Any]) -> str:
    """sha256 of a change-control plan's canonical JSON (the decision rule a ledger is bound
    to: criteria, order, comparators at the start, subgroups, threshold, levels, methods,
    test-set pin)."""
    return canonical_sha256(dict(plan))


def _normalize(*, candidate, current, original, approved, criteria, margins, order, by,
               threshold, alpha, online, multiplicity, paired_interval, cluster, min_n,
               min_events, n_boot, random_state, test_set_sha256, max_looks,
               protocol_name) -> dict[str, Any]:
    """Validated settings and the plan (the decision rule) with its sha256."""
    from rwe.protocol._schema import _sha256_ok
    from rwe.stats import PAIRED_DIFFERENCE_METHODS

    groupings_by = _norm_by(by)
    crits, steps = _criteria(criteria, margins, order, bool(groupings_by))
    threshold = check_real(threshold, "threshold", low=0.0, high=1.0, low_inclusive=False,
                           high_inclusive=False)
    alpha = check_real(alpha, "alpha", low=0.0, high=0.5, low_inclusive=False,
                       high_inclusive=False)
    settings_online = online_settings(online, alpha)
    check_choice(multiplicity, "multiplicity", MULTIPLICITY)
    check_choice(paired_interval, "paired_interval", PAIRED_DIFFERENCE_METHODS)
    check_choice(cluster, "cluster", CLUSTER_CHOICES)
    min_n = check_int(min_n, "min_n", minimum=1)
    min_events = check_int(min_events, "min_events", minimum=0)
    n_boot = check_int(n_boot, "n_boot", minimum=50)
    if isinstance(random_state, np.random.Generator):
        random_state = int(random_state.integers(2**31 - 1))
    seed = check_int(0 if random_state is None else random_state, "random_state", minimum=0)
    if max_looks is not None:
        max_looks = check_int(max_looks, "max_looks", minimum=1)
    if test_set_sha256 is not None:
        try:
            _sha256_ok(test_set_sha256)
        except ValueError as exc:
            raise InvalidParameterError(f"test_set_sha256: {exc}") from None
    candidate = str(candidate)
    if current is None and original is None:
        raise InvalidParameterError("give the current or the original version (or both)")
    current = str(current if current is not None else original)
    original = str(original if original is not None else current)
    approved = [str(v) for v in approved]
    if candidate in {current, original, *approved}:
        raise InvalidParameterError(f"candidate {candidate!r} is the current, the original or "
                                    "an approved version; a candidate is a new version")
    plan = {
        "protocol": protocol_name, "original": original, "current_at_start": current,
        "approved_before": approved, "criteria": [c.model_dump(mode="json") for c in crits],
        "steps": steps, "by": [list(g) for g in groupings_by], "threshold": threshold,
        "alpha": alpha, "online": settings_online, "multiplicity": multiplicity,
        "paired_interval": paired_interval, "cluster": cluster, "min_n": min_n,
        "min_events": min_events, "n_boot": n_boot, "seed": seed,
        "test_set_sha256": test_set_sha256, "max_looks": max_looks,
    }
    return {"candidate": candidate, "current": current, "original": original,
            "approved": approved, "groupings_by": groupings_by, "crits": crits, "steps": steps,
            "threshold": threshold, "settings_online": settings_online, "min_n": min_n,
            "min_events": min_events, "n_boot": n_boot, "seed": seed, "max_looks": max_looks,
            "plan": plan, "plan_sha256": plan_sha256(plan)}


# ----------------------------------------------------------------------------- main
def compare_models(
    data,
    *,
    candidate: str,
    current: str | None = None,
    original: str | None = None,
    approved: Sequence[str] = (),
    criteria: Sequence[Any] | None = None,
    margins: Mapping[str, float] | None = None,
    order: Sequence[Any] | None = None,
    by: Any = (),
    threshold: float,
    alpha: float = 0.025,
    online: Mapping[str, Any] | None = None,
    multiplicity: str = "none",
    paired_interval: str = "tango",
    cluster: str = "auto",
    min_n: int = 30,
    min_events: int = 5,
    n_boot: int = 1000,
    random_state: Any = 0,
    scores: Mapping[str, Any] | None = None,
    models: Mapping[str, Any] | None = None,
    test_set_sha256: str | None = None,
    max_looks: int | None = None,
    ledger: str | Path | Ledger | None = None,
    ledger_head: str | None = None,
    protocol: Any = None,
    history: Any = None,
) -> ComparisonResult:
    """Decide a model update: the candidate against the current, the original and every
    approved version on the same cases, under pre-specified acceptance criteria.

    Parameters
    ----------
    data : rwe.data.EvaluationSet
        The sequestered test set: label, and the versions' scores as score columns (or in
        ``scores``). Rows are needed (a paired comparison; :data:`MSG_NEEDS_ROWS`).
    candidate : str
        The version proposed.
    current : str, optional
        The version in use when the plan was written (default ``original``); with a ledger,
        the last version it approved takes its place.
    original : str, optional
        The original cleared version (default ``current``).
    approved : sequence of str
        Versions approved before the ledger began (the ledger adds its own approvals).
    criteria : sequence of dict or CriterionSpec, optional
        ``{"metric", "test": "noninferiority" | "superiority" | "goal", "margin", "goal",
        "scope": "overall" | "subgroups" | "all", "against": "all" | "current" |
        "original", "min_n", "min_events", "required", "name", "description"}``
        (:class:`rwe.protocol.CriterionSpec`).
    margins : dict, optional
        Shorthand: ``{metric: margin}`` non-inferiority criteria (overall and, with ``by``,
        in every subgroup).
    order : sequence, optional
        Gate-keeping steps of criterion names; a nested list is a co-primary step; criteria
        not named follow, one step each. Default: one step holding every criterion.
    by : sequence of str or tuple of str
        Pre-specified subgroups (attributes; a tuple is an intersection).
    threshold : float
        Operating threshold: called positive when ``score >= threshold``.
    alpha : float, default 0.025
        One-sided level of each update (``online`` fixed) or the online target rate.
    online : dict, optional
        ``{"procedure": "fixed" | "lord++" | "alpha_investing" | "saffron", "alpha", "w0",
        "lambda"}`` (:func:`rwe.stats.online_test`); default fixed.
    multiplicity : {"none", "bonferroni", "holm"}, default "none"
        Adjustment across the cells (subgroups x comparators) of a criterion. ``"none"``: each
        cell at the update's level, the intersection-union test of "every cell passes".
    paired_interval : {"tango", "newcombe", "wald"}, default "tango"
        Interval for the paired sensitivity and specificity differences without clustering.
    cluster : {"auto", "patients", "none"}, default "auto"
        Patient-level (cluster) variances: ``"auto"`` when a patient appears more than once.
    min_n, min_events : int
        Default cell size rules of the criteria (a criterion may set its own).
    n_boot : int, default 1000
        Replicates of the paired calibration bootstrap.
    random_state : int or numpy Generator, default 0
        Seed of the bootstrap (an int is recorded in the plan).
    scores : dict, optional
        Versions' scores not in the data: ``{version: Series indexed by case id}`` (joined on
        the id column; every test-set case must be scored, and only those) or arrays aligned
        with the rows.
    models : dict, optional
        Model identity per version (``{"weights_sha256", "code_sha256", "udi"}``, PRV-6).
    test_set_sha256 : str, optional
        The content hash the plan fixed (:func:`rwe.change_control.test_set_sha256`): a test
        set with another hash is refused.
    max_looks : int, optional
        Comparisons the ledger allows on this test set (refresh policy).
    ledger : path or Ledger, optional
        Record the decision: the ledger gives the versions approved so far and the error
        budget spent; the entry is appended under its lock. Without it the comparison is not
        recorded (a finding says so).
    ledger_head : str, optional
        A head hash the ledger must contain (truncation check).
    protocol : rwe.protocol.Protocol, optional
        Recorded in the ledger (name, sha256); :func:`compare_from_protocol` passes it.
    history : sequence of dict, optional
        Without ``ledger``: verified ledger entries to take as the history (approvals and
        error budget) of an unrecorded comparison. The dossier uses it to recompute a decision
        the ledger recorded, from the entries before it, with nothing appended.

    Returns
    -------
    ComparisonResult

    Raises
    ------
    InvalidParameterError
        A version without scores, scores on other cases, bad settings.
    DataValidationError
        The test set's content hash differs from ``test_set_sha256``.
    LedgerError
        The ledger is broken, truncated, from another plan, locked, or the test set has had
        its ``max_looks``. Nothing is appended.

    Notes
    -----
    The decision rule is given in :mod:`rwe.change_control._compare`; the paired methods in
    :mod:`rwe.change_control._paired`. Every number comes from rows.

    References
    ----------
    .. [1] Feng J, Emerson S, Simon N. Approval policies for modifications to machine
       learning-based software as a medical device: a study of bio-creep. Biometrics.
       2021;77(1):31-44.
    .. [2] FDA. Marketing Submission Recommendations for a Predetermined Change Control Plan
       for Artificial Intelligence-Enabled Device Software Functions (final guidance), 2024.
    .. [3] Berger RL, Hsu JC. Bioequivalence trials, intersection-union tests and equivalence
       confidence sets. Stat Sci. 1996;11(4):283-319.
    .. [4] Dmitrienko A, Tamhane AC. Gatekeeping procedures with clinical trial applications.
       Pharm Stat. 2007;6(3):171-180.
    """
    from rwe.stats.summaries import Summary

    if isinstance(data, Summary):
        raise InvalidParameterError(MSG_NEEDS_ROWS)
    if not hasattr(data, "roles") or not hasattr(data, "frame"):
        raise InvalidParameterError(f"data must be an rwe EvaluationSet, got "
                                    f"{type(data).__name__}")
    if data.roles.label is None:
        raise InvalidParameterError("change control needs a binary label column (roles.label)")
    nz = _normalize(candidate=candidate, current=current, original=original,
                    approved=approved, criteria=criteria, margins=margins, order=order, by=by,
                    threshold=threshold, alpha=alpha, online=online, multiplicity=multiplicity,
                    paired_interval=paired_interval, cluster=cluster, min_n=min_n,
                    min_events=min_events, n_boot=n_boot, random_state=random_state,
                    test_set_sha256=test_set_sha256, max_looks=max_looks,
                    protocol_name=getattr(protocol, "name", None))
    candidate, current, original, approved = (nz["candidate"], nz["current"], nz["original"],
                                              nz["approved"])
    groupings_by = nz["groupings_by"]
    for a in [a for g in groupings_by for a in g]:
        data.attribute(a)  # raises naming the grouping columns

    # ---------------------------------------------------------------- scores and hashes
    ids = _ids(data)
    all_scores: dict[str, np.ndarray] = {v: data.score(v) for v in data.versions}
    for v, s in (scores or {}).items():
        all_scores[str(v)] = _extra_scores(data, str(v), s, ids)
    have = ", ".join(map(repr, all_scores)) or "none"
    if candidate not in all_scores:
        raise InvalidParameterError(MSG_NO_SCORES.format(role="candidate", v=candidate,
                                                         have=have))
    case_ord = case_order(ids)
    ts_hash = _test_set_hash(data, _order=case_ord)
    if test_set_sha256 is not None and ts_hash != test_set_sha256:
        where = (protocol.locate(("change_control", "test_set", "sha256")) + ": "
                 if protocol is not None and hasattr(protocol, "locate") else "")
        raise DataValidationError(
            [f"{where}the test set has content sha256 {ts_hash} ({data.n:,} cases in "
             f"{data.source}), not the {test_set_sha256} the plan fixed: these are not the "
             "sequestered cases; nothing was compared"], source=data.source)
    models = {str(k): (v.model_dump(mode="json", exclude={"scores"}) if hasattr(v, "model_dump")
                       else dict(v)) for k, v in (models or {}).items()}

    args = dict(data=data, candidate=candidate, current=current, original=original,
                approved=approved, crits=nz["crits"], steps=nz["steps"],
                groupings_by=groupings_by, threshold=nz["threshold"],
                multiplicity=multiplicity, paired_interval=paired_interval, cluster=cluster,
                min_n=nz["min_n"], min_events=nz["min_events"], n_boot=nz["n_boot"],
                seed=nz["seed"], all_scores=all_scores, ids=ids, case_ord=case_ord, ts_hash=ts_hash,
                models=models, plan_hash=nz["plan_sha256"],
                settings_online=nz["settings_online"], max_looks=nz["max_looks"],
                protocol=protocol, test_set_pinned=test_set_sha256 is not None, plan=nz["plan"])
    plan_hash = nz["plan_sha256"]
    if ledger is None:
        return _decide(entries=list(history or ()), tx=None, **args)
    if history is not None:
        raise InvalidParameterError("history= replays ledger entries without a ledger; "
                                    "give ledger= or history=, not both")
    led = ledger if isinstance(ledger, Ledger) else Ledger(ledger, head=ledger_head)
    if ledger_head is not None and isinstance(ledger, Ledger):
        led.expected_head = ledger_head
    with led.transaction(plan_sha256=plan_hash) as tx:
        return _decide(entries=tx.entries, tx=tx, **args)


def _history(entries, candidate, ts_hash, hashes, models, max_looks, path):
    """Approvals so far, looks at this test set, and the checks of a locked version's outputs
    and of model identities against earlier entries."""
    approved: list[str] = []
    looks = 0
    for e in entries:
        vs = e.get("versions") or {}
        if e.get("verdict") == APPROVE and vs.get("candidate") is not None:
            approved.append(str(vs["candidate"]))
        same_set = (e.get("test_set") or {}).get("sha256") == ts_hash
        looks += bool(same_set)
        for v, h in (e.get("scores") or {}).items():
            if same_set and v in hashes and v != candidate and h != hashes[v]:
                raise LedgerError(
                    f"{path}: the scores of version {v!r} on this test set differ from those "
                    f"recorded in entry {e['seq']} (sha256 {h[:12]}... vs {hashes[v][:12]}...):"
                    " an approved or locked version's outputs must not change (PRV-6); "
                    "nothing was compared")
        for v, ident in (e.get("models") or {}).items():
            if ident and v in models and models[v] and \
                    ident.get("weights_sha256") != models[v].get("weights_sha256"):
                raise LedgerError(
                    f"{path}: version {v!r} has weights sha256 "
                    f"{models[v].get('weights_sha256', '')[:12]}... but entry {e['seq']} "
                    f"recorded {str(ident.get('weights_sha256'))[:12]}...: one version, one "
                    "model (PRV-6); nothing was compared")
    if candidate in approved:
        raise LedgerError(f"{path}: candidate {candidate!r} was already approved (entry "
                          f"{next(e['seq'] for e in entries if e.get('verdict') == APPROVE and (e.get('versions') or {}).get('candidate') == candidate)}); "
                          "a candidate is a new version; nothing was compared")
    if max_looks is not None and looks >= max_looks:
        raise LedgerError(f"{path}: the test set (sha256 {ts_hash[:12]}...) has been used for "
                          f"{looks} comparison(s), its max_looks; refresh it with newly "
                          "sequestered cases (CHG-6); nothing was compared")
    return approved, looks


def _decide(*, data, candidate, current, original, approved, crits, steps, groupings_by,
            threshold, multiplicity, paired_interval, cluster, min_n, min_events, n_boot,
            seed, all_scores, ids, case_ord, ts_hash, models, plan_hash, settings_online, max_looks,
            protocol, test_set_pinned, plan, entries, tx) -> ComparisonResult:
    path = tx.ledger.path if tx is not None else None
    hashes = {v: score_sha256(ids, s, _order=case_ord) for v, s in all_scores.items()}
    led_approved, looks = _history(entries, candidate, ts_hash, hashes, models, max_looks,
                                   path)
    approved_all = list(dict.fromkeys([*approved, *led_approved]))
    if candidate in approved_all:
        raise InvalidParameterError(f"candidate {candidate!r} was approved before: a candidate "
                                    "is a new version")
    cur = led_approved[-1] if led_approved else current
    roles: dict[str, list[str]] = {}
    for v, role in [(cur, "current"), (original, "original")] + [(v, "approved")
                                                                   for v in approved_all]:
        if role == "approved" and v in roles:
            continue
        roles.setdefault(v, []).append(role)
    have = ", ".join(map(repr, all_scores))
    for v, rs in roles.items():
        if v not in all_scores:
            raise InvalidParameterError(MSG_NO_SCORES.format(role=" and ".join(rs), v=v,
                                                             have=have))
    level = next_level(settings_online, entries)

    # ---------------------------------------------------------------- groupings and clusters
    groupings = [Grouping("overall", 0, np.zeros(data.n, dtype=np.int64), ("all",))]
    for g in groupings_by:
        codes, levels = data.subgroup_codes(g[0] if len(g) == 1 else g)
        groupings.append(Grouping(GROUP_SEP.join(g), len(g), np.asarray(codes, dtype=np.int64),
                                  tuple(levels)))
    repeated = data.has_repeated_patients
    if cluster == "patients" and data.clusters is None:
        raise InvalidParameterError("cluster='patients' needs a patient_id column role")
    use_cl = cluster == "patients" or (cluster == "auto" and repeated)
    cd = CellData(y=data.y_true, scores={v: all_scores[v] for v in [candidate, *roles]},
                  clusters=data.clusters if use_cl else None, threshold=threshold,
                  groupings=tuple(groupings))
    rows = cell_rows(cd)
    all_cells = [(0, 0)] + [(gi, li) for gi in range(1, len(groupings))
                            for li in range(len(groupings[gi].levels))]

    # ---------------------------------------------------------------- criteria
    step_of = {name: i + 1 for i, s in enumerate(steps) for name in s}
    cache: dict = {}  # calibration fits and replicates, shared by criteria and _cumulative
    frames: list[dict[str, Any]] = []
    for c in crits:
        cells = [x for x in all_cells if (c.scope == "overall" and x[0] == 0) or
                 (c.scope == "subgroups" and x[0] > 0) or c.scope == "all"]
        if c.test == "goal":
            comps: list[str] = []
        elif c.comparators == "current":
            comps = [cur]
        elif c.comparators == "original":
            comps = [original]
        else:
            comps = list(roles)
        thr = -float(c.margin) if c.test == "noninferiority" else (
            0.0 if c.test == "superiority" else float(c.goal))
        cmin_n = c.min_n if c.min_n is not None else min_n
        cmin_ev = c.min_events if c.min_events is not None else min_events
        a_eff = level
        if multiplicity == "bonferroni":
            k = _inside_count(cd, rows, c.metric, cells, cmin_n, cmin_ev) * max(len(comps), 1)
            a_eff = level / max(k, 1)
        recs = compare_cells(cd, rows, metric=c.metric, test=c.test, cells=cells,
                             candidate=candidate, comparators=comps, alpha=a_eff,
                             threshold_value=thr, min_n=cmin_n, min_events=cmin_ev,
                             paired_interval=paired_interval, n_boot=n_boot, seed=seed,
                             cache=cache)
        inside_c = [r["excluded"] is None for r in recs]
        p_in = np.array([r["pvalue"] if ok else np.nan for r, ok in zip(recs, inside_c,
                                                                         strict=True)])
        if multiplicity == "bonferroni":
            padj = np.minimum(1.0, p_in * max(int(sum(inside_c)), 1))
        elif multiplicity == "holm":
            from rwe.stats import adjust_pvalues

            padj = adjust_pvalues(p_in, method="holm")
        else:
            padj = p_in
        for r, pa in zip(recs, padj, strict=True):
            v = r["comparator"]
            r.update(criterion=c.key, step=step_of[c.key], metric=c.metric, test=c.test,
                     required=c.required,
                     comparator_roles=None if v is None else " and ".join(roles[v]),
                     ci_level=1 - 2 * a_eff, threshold_value=thr,
                     margin=np.nan if c.margin is None else float(c.margin),
                     goal=np.nan if c.goal is None else float(c.goal),
                     pvalue_adjusted=r["pvalue"] if r["excluded"] is not None else float(pa))
        frames.extend(recs)
    table = pd.DataFrame(frames)
    status = np.full(len(table), STATUS_NOT_EVALUABLE, dtype=object)
    reason = table["reason"].to_numpy(dtype=object).copy()
    inside = table["excluded"].isna().to_numpy()
    lo = table["ci_low"].to_numpy(dtype=float)
    thrv = table["threshold_value"].to_numpy(dtype=float)
    padj = table["pvalue_adjusted"].to_numpy(dtype=float)
    defined = inside & np.array([r is None for r in reason]) & np.isfinite(lo)
    if multiplicity == "holm":
        ok = padj < level
    else:
        ok = lo > thrv
    status[defined & ok] = STATUS_PASS
    status[defined & ~ok] = STATUS_FAIL
    status[~inside] = STATUS_NOT_EVALUATED
    reason[~inside] = table["excluded"].to_numpy(dtype=object)[~inside]

    # ---------------------------------------------------------------- gate-keeping
    crit_status: dict[str, str] = {}
    crit_reason: dict[str, str | None] = {}
    gate_closed_by: int | None = None
    for si, step in enumerate(steps, start=1):
        for name in step:
            sel = (table["criterion"] == name).to_numpy()
            judged = status[sel & inside]
            if gate_closed_by is not None:
                crit_status[name] = STATUS_NOT_EVALUATED
                crit_reason[name] = (f"gate closed: step {gate_closed_by} did not pass "
                                     "(estimates shown, not judged)")
                gated = sel & inside
                status[gated] = STATUS_NOT_EVALUATED
                reason[gated] = crit_reason[name]
                continue
            n_fail = int((judged == STATUS_FAIL).sum())
            n_ne = int((judged == STATUS_NOT_EVALUABLE).sum())
            if judged.size == 0:
                crit_status[name] = STATUS_NOT_EVALUABLE
                crit_reason[name] = "no cell has enough rows and events for this criterion"
            elif n_fail:
                crit_status[name] = STATUS_FAIL
                crit_reason[name] = f"fails in {n_fail} of {judged.size} judged cell(s)"
            elif n_ne:
                crit_status[name] = STATUS_NOT_EVALUABLE
                crit_reason[name] = f"{n_ne} of {judged.size} cell(s) could not be judged"
            else:
                crit_status[name] = STATUS_PASS
                crit_reason[name] = None
        if gate_closed_by is None and any(crit_status[n] != STATUS_PASS for n in step):
            gate_closed_by = si
    table["status"] = status
    table["reason"] = reason
    table = table[TABLE_COLUMNS + ["_cell"]]

    required = [c.key for c in crits if c.required]
    req_status = [crit_status[n] for n in required]
    if STATUS_FAIL in req_status:
        verdict = REJECT
    elif req_status and all(s == STATUS_PASS for s in req_status):
        verdict = APPROVE
    else:
        verdict = INCONCLUSIVE
    # the intersection-union p value of the update (required cells), for the online procedure
    preq = table[table["required"] & inside]["pvalue_adjusted"].to_numpy(dtype=float)
    no_cells = any(not ((table["criterion"] == n) & inside).any() for n in required)
    p_update = 1.0 if (no_cells or preq.size == 0 or not np.isfinite(preq).all()) \
        else float(preq.max())
    if verdict == APPROVE and not p_update <= level:  # pragma: no cover - consistency guard
        verdict = INCONCLUSIVE

    # ---------------------------------------------------------------- criteria summary
    crows, verdicts = [], []
    for c in crits:
        t = table[table["criterion"] == c.key]
        tin = t[[r is None or not str(r).startswith("outside") for r in t["reason"]]]
        judged = tin[tin["status"].isin([STATUS_PASS, STATUS_FAIL])]
        if not len(judged):
            judged = tin[np.isfinite(tin["ci_low"].to_numpy(dtype=float))]
        worst = None
        if len(judged):
            margin_to_thr = judged["ci_low"].to_numpy(dtype=float) - \
                judged["threshold_value"].to_numpy(dtype=float)
            worst = judged.iloc[int(np.nanargmin(margin_to_thr))]
        counts = {s: int((t["status"] == s).sum()) for s in (STATUS_PASS, STATUS_FAIL,
                                                             STATUS_NOT_EVALUABLE,
                                                             STATUS_NOT_EVALUATED)}
        outside = int(sum(1 for r in t["reason"] if isinstance(r, str)
                          and r.startswith("outside")))
        p_c = tin["pvalue_adjusted"].to_numpy(dtype=float)
        crows.append({
            "criterion": c.key, "step": step_of[c.key], "metric": c.metric, "test": c.test,
            "required": c.required, "scope": c.scope,
            "against": None if c.test == "goal" else c.comparators,
            "margin": np.nan if c.margin is None else float(c.margin),
            "goal": np.nan if c.goal is None else float(c.goal),
            "status": crit_status[c.key], "cells_pass": counts[STATUS_PASS],
            "cells_fail": counts[STATUS_FAIL],
            "cells_not_evaluable": counts[STATUS_NOT_EVALUABLE], "cells_outside": outside,
            "worst_group": None if worst is None else worst["group"],
            "worst_level": None if worst is None else worst["level"],
            "worst_comparator": None if worst is None else worst["comparator"],
            "worst_estimate": np.nan if worst is None else float(worst["estimate"]),
            "worst_bound": np.nan if worst is None else float(worst["ci_low"]),
            "pvalue": float(np.nanmax(p_c)) if p_c.size and np.isfinite(p_c).any() else np.nan,
            "reason": crit_reason[c.key]})
        verdicts.append(_criterion_verdict(c, crit_status[c.key], crit_reason[c.key], worst,
                                           counts, t, level,
                                           c.min_n if c.min_n is not None else min_n,
                                           c.min_events if c.min_events is not None
                                           else min_events, bool(groupings_by)))
    crit_frame = pd.DataFrame(crows, columns=CRITERIA_COLUMNS)

    # ---------------------------------------------------------------- cumulative, ROC
    cumulative = _cumulative(cd, rows, crits, candidate, cur, original, approved_all, level,
                             seed, n_boot, paired_interval, all_scores, cache)
    roc = _roc(cd, rows, table, candidate, list(roles))

    # ---------------------------------------------------------------- provenance, online
    prov = {
        "protocol_name": getattr(protocol, "name", None),
        "protocol_sha256": getattr(protocol, "sha256", None),
        "protocol_file_sha256": getattr(protocol, "file_sha256", None),
        "plan_sha256": plan_hash,
        "data": _data_record(data),
        "test_set": {"sha256": ts_hash, "cases": int(data.n), "pinned": test_set_pinned,
                     "look": looks + 1 if tx is not None else None, "max_looks": max_looks},
        "scores": {v: hashes[v] for v in [candidate, *roles]},
        "models": {v: models.get(v) for v in [candidate, *roles]},
        "packages": package_versions(),
        "n": int(data.n), "events": int(data.y_true.sum()),
        "patients": None if data.clusters is None else int(np.unique(data.clusters).size),
        "clustered": bool(use_cl),
    }
    o_rec = online_record(settings_online, entries, level, p_update, verdict == APPROVE)
    comparators = tuple({"version": v, "roles": list(r)} for v, r in roles.items())
    decision = Verdict(
        verdict_id("change_control", "update", {"plan": plan_hash, "candidate": candidate},
                   label=candidate), "change_control", "criterion",
        f"update to version {candidate}: every required acceptance criterion passes",
        {APPROVE: STATUS_PASS, REJECT: STATUS_FAIL}.get(verdict, STATUS_NOT_EVALUABLE),
        reason={APPROVE: None, REJECT: "a required criterion fails",
                INCONCLUSIVE: "a required criterion could not be judged"}[verdict],
        counts={s: sum(1 for n in required if crit_status[n] == s) for s in
                (STATUS_PASS, STATUS_FAIL, STATUS_NOT_EVALUABLE, STATUS_NOT_EVALUATED)},
        source="change_control")
    settings = {
        "threshold": threshold, "by": [GROUP_SEP.join(g) for g in groupings_by],
        "multiplicity": multiplicity, "paired_interval": paired_interval,
        "cluster": cluster, "clustered": bool(use_cl), "min_n": min_n,
        "min_events": min_events, "n_boot": n_boot, "seed": seed, "steps": steps,
        "alpha": settings_online["alpha"], "criteria": [c.model_dump(mode="json") for c in crits],
        "plan": plan,
    }
    table = table.drop(columns=["_cell"])
    result_args = dict(
        verdict=verdict, candidate=candidate, current=cur, original=original,
        comparators=comparators, level=level, decision=decision, verdicts=tuple(verdicts),
        table=table, criteria=crit_frame, cumulative=cumulative, roc=roc, online=o_rec,
        provenance=prov, settings=settings)
    findings = _findings(verdict, candidate, table, crit_frame, cumulative, level, prov,
                         min_n, min_events, tx is None, original)
    ledger_info = None
    if tx is not None:
        entry = tx.append({
            "plan_sha256": plan_hash, "kind": "comparison",
            "protocol": {"name": prov["protocol_name"], "sha256": prov["protocol_sha256"],
                         "file_sha256": prov["protocol_file_sha256"]},
            "data": prov["data"], "test_set": prov["test_set"], "scores": prov["scores"],
            "models": prov["models"], "packages": prov["packages"],
            "versions": {"candidate": candidate, "current": cur, "original": original,
                         "comparators": [dict(c) for c in comparators]},
            "verdict": verdict,
            "criteria": [{k: r[k] for k in ("criterion", "step", "metric", "test", "required",
                                            "status", "margin", "goal", "worst_group",
                                            "worst_level", "worst_comparator",
                                            "worst_estimate", "worst_bound", "pvalue")}
                         for r in crows],
            "online": o_rec,
        })
        ledger_info = {"path": str(tx.ledger.path), "file": tx.ledger.path.name,
                       "seq": entry["seq"],
                       "sha256": entry["sha256"], "time": entry["time"],
                       "budget": budget_summary(tx.entries)}
    return ComparisonResult(**result_args, findings=tuple(findings), ledger=ledger_info)


def _inside_count(cd, rows, metric, cells, min_n, min_events) -> int:
    from ._paired import _needed

    k = 0
    for cell in cells:
        idx = rows[cell]
        n_pos = int(cd.y[idx].sum())
        need, _ = _needed(metric, n_pos, idx.size - n_pos)
        k += idx.size >= min_n and need >= min_events
    return k


_TEST_WORDS = {"noninferiority": "{metric} non-inferior to {against} (margin {margin:g}), "
                                 "lower {level} bound > -{margin:g}",
               "superiority": "{metric} superior to {against}, lower {level} bound > 0",
               "goal": "{metric} of the candidate, lower {level} bound > {goal:g}"}
_AGAINST = {"all": "every approved version", "current": "the current version",
            "original": "the original version"}
_SCOPE = {"overall": "overall", "subgroups": "in every subgroup",
          "all": "overall and in every subgroup"}


def _criterion_verdict(c, status, reason, worst, counts, t, level, min_n, min_events,
                       has_subgroups) -> Verdict:
    words = _TEST_WORDS[c.test].format(metric=c.metric, against=_AGAINST.get(c.comparators, ""),
                                       margin=c.margin or 0.0, goal=c.goal or 0.0,
                                       level=f"{1 - 2 * level:.1%}")
    scope = _SCOPE[c.scope] if has_subgroups else "overall"
    crit = (f"{c.key}: {words}, {scope}" + (f" with n >= {min_n} and >= {min_events} events"
                                            if c.scope != "overall" and has_subgroups else ""))
    content = {"name": c.key, "metric": c.metric, "test": c.test, "margin": c.margin,
               "goal": c.goal, "scope": c.scope, "against": c.comparators, "min_n": min_n,
               "min_events": min_events, "required": c.required}
    cells = tuple({"group": r.group, "level": r.level, "comparator": r.comparator,
                   "status": r.status, "estimate": r.estimate, "bound": r.ci_low,
                   "n": int(r.n), "events": int(r.events), "reason": r.reason}
                  for r in t.itertuples(index=False))
    interval = None
    if worst is not None and math.isfinite(worst["ci_low"]) and math.isfinite(worst["ci_high"]):
        interval = Interval(float(worst["ci_low"]), float(worst["ci_high"]),
                            float(worst["ci_level"]), str(worst["ci_method"]))
    return Verdict(verdict_id("change_control", "criterion", content, label=c.key),
                   "change_control", "criterion", crit, status,
                   estimate=None if worst is None else float(worst["estimate"]),
                   interval=interval, goal=c.goal, margin=c.margin, reason=reason,
                   source=f"change_control.{c.key}", counts=counts, cells=cells,
                   description=c.description)


def _data_record(data) -> dict[str, Any]:
    fp = data.source_fingerprint
    if fp is None:
        return {"file": None, "sha256": None, "rows": int(data.n), "source": data.source}
    return {"file": fp.get("file"), "sha256": fp.get("sha256"), "format": fp.get("format"),
            "rows": int(data.n), "source": fp.get("file")}


def _cumulative(cd, rows, crits, candidate, cur, original, approved, level, seed, n_boot,
                paired_interval, all_scores, cache) -> pd.DataFrame:
    """Every approved version and the candidate against the original, overall (CHG-7)."""
    out = []
    chain = list(dict.fromkeys([v for v in [*approved, cur] if v != original] + [candidate]))
    metrics = list(dict.fromkeys(c.metric for c in crits))
    margins = {}
    for c in crits:
        if c.test == "noninferiority":
            margins[c.metric] = max(margins.get(c.metric, 0.0), float(c.margin))
    for m in metrics:
        for i, v in enumerate(chain):
            data_v = CellData(cd.y, {v: all_scores[v], original: all_scores[original]},
                              cd.clusters, cd.threshold, cd.groupings[:1])
            rec = compare_cells(data_v, rows, metric=m, test="noninferiority", cells=[(0, 0)],
                                candidate=v, comparators=[original], alpha=level,
                                threshold_value=-margins.get(m, 0.0), min_n=1, min_events=0,
                                paired_interval=paired_interval, n_boot=n_boot, seed=seed,
                                cache=cache)[0]
            base = {"metric": m, "ci_level": 1 - 2 * level, "margin": margins.get(m, np.nan)}
            if i == 0:
                out.append({**base, "version": original, "role": "original",
                            "value": rec["comparator_value"], "improvement_vs_original": 0.0,
                            "ci_low": 0.0, "ci_high": 0.0})
            role = "candidate" if v == candidate else ("current" if v == cur else "approved")
            out.append({**base, "version": v, "role": role, "value": rec["candidate_value"],
                        "improvement_vs_original": rec["estimate"], "ci_low": rec["ci_low"],
                        "ci_high": rec["ci_high"]})
    return pd.DataFrame(out, columns=CUMULATIVE_COLUMNS)


def _roc(cd, rows, table, candidate, comparators) -> pd.DataFrame:
    parts = []
    cells = [(0, 0)]
    failed = table[(table["metric"] == "auroc") & (table["status"] == STATUS_FAIL)]
    for cell in failed["_cell"]:
        if cell not in cells:
            cells.append(cell)
    for cell in cells[:6]:
        idx = rows[cell]
        y = cd.y[idx]
        if y.all() or not y.any():
            continue
        g = cd.groupings[cell[0]]
        for v in [candidate, *comparators]:
            fpr, tpr = roc_points(y, cd.scores[v][idx])
            parts.append(pd.DataFrame({"version": v, "group": g.name,
                                       "level": g.levels[cell[1]], "fpr": fpr, "tpr": tpr}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=ROC_COLUMNS)


def _where(r) -> str:
    return "overall" if r["group"] == "overall" else f"{r['group']} = {r['level']}"


def _findings(verdict, candidate, table, crit, cumulative, level, prov, min_n, min_events,
              unrecorded, original) -> list[Finding]:
    from ._result import _BANNER

    out: list[Finding] = []
    req = crit[crit["required"]]
    out.append(Finding("change_control.verdict", {"candidate": candidate},
                       {"verdict": verdict, "banner": _BANNER[verdict].format(c=candidate),
                        "level": level, "required": len(req),
                        "passed": int((req["status"] == STATUS_PASS).sum()),
                        "fail": int((req["status"] == STATUS_FAIL).sum()),
                        "not_judged": int((~req["status"].isin([STATUS_PASS,
                                                                STATUS_FAIL])).sum())},
                       {}, "critical" if verdict != APPROVE else "info"))
    for r in crit.itertuples(index=False):
        if r.status != STATUS_FAIL:
            continue
        t = table[(table["criterion"] == r.criterion) & (table["status"] == STATUS_FAIL)]
        w = t.iloc[int(np.argmin(t["ci_low"].to_numpy(dtype=float) -
                                 t["threshold_value"].to_numpy(dtype=float)))]
        out.append(Finding("change_control.criterion_failed",
                           {"criterion": r.criterion, "where": _where(w),
                            "comparator": w["comparator"] or "the goal"},
                           {"quantity": w["quantity"], "estimate": float(w["estimate"]),
                            "bound": float(w["ci_low"]),
                            "threshold": float(w["threshold_value"])},
                           {"n": int(w["n"]), "events": int(w["events"])}, "critical"))
    diff = table[(table["test"] != "goal") & table["ci_low"].notna()]
    seen = set()
    for r in diff.itertuples(index=False):
        key = (r.metric, r.group, r.level, r.comparator)
        if key in seen or not isinstance(r.comparator, str):
            continue
        seen.add(key)
        rr = {"group": r.group, "level": r.level}
        if r.ci_low > 0 and r.group != "overall":
            out.append(Finding("change_control.improvement",
                               {"metric": r.metric, "where": _where(rr),
                                "comparator": r.comparator},
                               {"estimate": r.estimate, "ci_low": r.ci_low,
                                "ci_high": r.ci_high, "level": r.ci_level},
                               {"n": int(r.n), "events": int(r.events)}))
        elif r.ci_high < 0:
            beyond = (f", beyond the margin {r.margin:g}" if math.isfinite(r.margin)
                      and r.estimate < -r.margin else "")
            out.append(Finding("change_control.loss",
                               {"metric": r.metric, "where": _where(rr),
                                "comparator": r.comparator},
                               {"estimate": r.estimate, "ci_low": r.ci_low,
                                "ci_high": r.ci_high, "level": r.ci_level, "beyond": beyond},
                               {"n": int(r.n), "events": int(r.events)}, "warning"))
    outside = table[[isinstance(x, str) and x.startswith("outside") for x in table["reason"]]]
    if len(outside):
        cells = outside[["group", "level"]].drop_duplicates()
        ex = ", ".join(f"{g} = {lev}" for g, lev in cells.head(4).itertuples(index=False))
        out.append(Finding("change_control.cells_outside", {},
                           {"cells": len(cells), "min_n": min_n, "min_events": min_events,
                            "examples": ex + (", ..." if len(cells) > 4 else "")},
                           {}, "warning"))
    for r in cumulative[cumulative["role"] != "original"].itertuples(index=False):
        if r.role == "candidate" or r.role == "current":
            out.append(Finding("change_control.cumulative",
                               {"metric": r.metric, "version": r.version,
                                "original": original},
                               {"estimate": r.improvement_vs_original, "ci_low": r.ci_low,
                                "ci_high": r.ci_high, "level": r.ci_level}))
    if unrecorded:
        out.append(Finding("change_control.not_recorded", {}, {}, {}, "warning"))
    if not prov["test_set"]["pinned"]:
        out.append(Finding("change_control.test_set_not_pinned", {},
                           {"sha256": prov["test_set"]["sha256"]}, {}, "warning"))
    missing = [v for v, m in prov["models"].items() if not m]
    if missing:
        out.append(Finding("change_control.model_identity_missing", {},
                           {"versions": ", ".join(missing)}, {}, "warning"))
    return out


# ----------------------------------------------------------------------------- protocol
def compare_from_protocol(protocol, data=None, candidate: str | None = None,
                          **overrides) -> ComparisonResult:
    """Run :func:`compare_models` as the protocol's ``change_control`` section wrote it.

    Reads ``change_control`` (versions, margins and criteria, order, subgroups, min_n /
    min_events, alpha, online, multiplicity, paired_interval, cluster, n_boot, seed,
    test_set, models, ledger), ``performance.threshold`` and ``subgroups`` (when
    ``change_control.subgroups`` is true).

    Parameters
    ----------
    protocol : rwe.protocol.Protocol or path
    data : EvaluationSet, optional
        Default: the test set file (``change_control.test_set.path``) or the protocol's data.
    candidate : str, optional
        The version proposed (default ``change_control.candidate_version``).
    **overrides
        Keyword arguments of :func:`compare_models` that replace the protocol's (e.g.
        ``ledger=`` another path, ``ledger_head=``). ``ledger=False`` does not record the
        comparison even when the protocol names a ledger (the result says so: it is then not
        a change-control decision).
    """
    if not hasattr(protocol, "change_control"):
        from rwe.protocol import load_protocol

        protocol = load_protocol(protocol)
    cc = protocol.change_control
    if cc is None:
        raise InvalidParameterError(f"{protocol.locate(('change_control',))}: the protocol has "
                                    "no change_control section")
    if data is None:
        data = _load_test_set(protocol)
    kwargs = _protocol_kwargs(protocol, candidate)
    extra = {}
    for v, m in cc.models.items():
        if m.scores is not None:
            extra[v] = _read_scores(protocol, v, m.scores)
    kwargs["scores"] = extra or None
    ledger = overrides.pop("ledger", None)
    if ledger is False:  # explicitly not recorded (a finding says so)
        ledger = None
    elif ledger is None and cc.ledger is not None:
        ledger = protocol.resolve(cc.ledger)
    kwargs["ledger"] = ledger
    kwargs.update(overrides)
    return compare_models(data, **kwargs)


def _protocol_kwargs(protocol, candidate: str | None) -> dict[str, Any]:
    """:func:`compare_models` keyword arguments from a protocol (no data read)."""
    cc = protocol.change_control
    if cc.subgroups is True:
        by: list[Any] = list(protocol.subgroups.attributes) + [tuple(x) for x in
                                                               protocol.subgroups.intersections]
    elif cc.subgroups is False:
        by = []
    else:
        by = [g if isinstance(g, str) else tuple(g) for g in cc.subgroups]
    return dict(
        candidate=candidate or cc.candidate_version, current=cc.reference_version,
        original=cc.original_version, margins=dict(cc.margins), criteria=list(cc.criteria),
        order=list(cc.order) or None, by=by, threshold=protocol.performance.threshold,
        alpha=cc.alpha, online=cc.online.model_dump(by_alias=True),
        multiplicity=cc.multiplicity, paired_interval=cc.paired_interval, cluster=cc.cluster,
        min_n=cc.min_n if cc.min_n is not None else protocol.subgroups.min_n,
        min_events=cc.min_events if cc.min_events is not None else protocol.subgroups.min_events,
        n_boot=cc.n_boot, random_state=cc.seed if cc.seed is not None else
        protocol.performance.seed, models=dict(cc.models),
        test_set_sha256=cc.test_set.sha256, max_looks=cc.test_set.max_looks,
        protocol=protocol)


def compare_plan(protocol) -> str:
    """sha256 of the plan a protocol's comparisons are recorded under (the ledger it may use)."""
    kw = _protocol_kwargs(protocol, None)
    keep = {k: kw[k] for k in ("candidate", "current", "original", "criteria", "margins",
                               "order", "by", "threshold", "alpha", "online", "multiplicity",
                               "paired_interval", "cluster", "min_n", "min_events", "n_boot",
                               "random_state", "test_set_sha256", "max_looks")}
    keep["candidate"] = "\0"  # the plan does not depend on the candidate
    return _normalize(**keep, approved=(), protocol_name=protocol.name)["plan_sha256"]


def _load_test_set(protocol):
    cc = protocol.change_control
    if cc.test_set.path is None:
        return protocol.load_data()
    from rwe.data import load_evaluation_set, source_from_path

    src = source_from_path(protocol.resolve(cc.test_set.path))
    return load_evaluation_set(src, protocol.roles(), derived=protocol.derived_spec())


def _read_scores(protocol, version: str, spec) -> pd.Series:
    from rwe.data import source_from_path

    src = source_from_path(protocol.resolve(spec.path), format=spec.format)
    idcol = protocol.data.columns.id
    df = src.read([idcol, spec.column])
    return pd.Series(pd.to_numeric(df[spec.column], errors="coerce").to_numpy(dtype=float),
                     index=df[idcol].astype("string"), name=version)
