"""The error budget across successive updates, kept in the ledger (METHODS.md C7 b; CHG-6).

Every comparison recorded in the ledger is one test of the online sequence: update ``t`` is
tested at the level :func:`rwe.stats.online_test` gives it from the p values of the ``t - 1``
earlier comparisons (whatever their verdict), and its own p value is recorded. The ledger
therefore holds everything needed to recompute, and check, every level; what is left of the
budget is the level the next update would get.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rwe._validation import check_choice, check_real
from rwe.exceptions import InvalidParameterError

__all__ = ["ONLINE_CHOICES", "online_settings", "next_level", "check_levels",
           "budget_summary", "online_record"]

#: ``"fixed"`` tests every update at ``alpha``; the others are :data:`rwe.stats.ONLINE_PROCEDURES`.
ONLINE_CHOICES = ("fixed", "lord++", "alpha_investing", "saffron")
_LEVEL_RTOL = 1e-9


def online_settings(online: Mapping[str, Any] | Any | None, alpha: float) -> dict[str, Any]:
    """Normalised online settings: procedure, target alpha, initial wealth and lambda (the
    defaults of :func:`rwe.stats.online_test` resolved, so the ledger records the numbers)."""
    if online is None:
        online = {}
    elif hasattr(online, "model_dump"):
        online = online.model_dump(by_alias=True)
    if not isinstance(online, Mapping):
        raise InvalidParameterError(f"online must be a dict of settings, got {online!r}")
    unknown = set(online) - {"procedure", "alpha", "w0", "lambda"}
    if unknown:
        raise InvalidParameterError(f"online has unknown keys {sorted(unknown)}; valid: "
                                    "procedure, alpha, w0, lambda")
    proc = check_choice(online.get("procedure", "fixed"), "online.procedure", ONLINE_CHOICES)
    target = online.get("alpha") or alpha
    target = check_real(target, "online.alpha", low=0, high=1, low_inclusive=False,
                        high_inclusive=False)
    if proc == "fixed":
        return {"procedure": "fixed", "alpha": target, "w0": None, "lambda": None}
    lam = float(online.get("lambda") or 0.5) if proc == "saffron" else None
    w0 = online.get("w0")
    if w0 is None:
        w0 = target / 10 if proc == "lord++" else target / 2
    return {"procedure": proc, "alpha": target, "w0": float(w0), "lambda": lam}


def _pvalues(entries: Sequence[Mapping[str, Any]]) -> list[float]:
    out = []
    for e in entries:
        if not isinstance(e.get("online"), Mapping):
            continue  # not a test (another kind of entry)
        p = e["online"].get("pvalue")
        out.append(1.0 if p is None or (isinstance(p, float) and math.isnan(p)) else float(p))
    return out


def next_level(settings: Mapping[str, Any], entries: Sequence[Mapping[str, Any]]) -> float:
    """The one-sided level the next comparison gets, after ``entries``."""
    if settings["procedure"] == "fixed":
        return float(settings["alpha"])
    from rwe.stats import online_test

    return float(online_test(_pvalues(entries), procedure=settings["procedure"],
                             alpha=settings["alpha"], w0=settings["w0"],
                             lambda_=settings["lambda"] or 0.5).next_level)


def online_record(settings: Mapping[str, Any], entries: Sequence[Mapping[str, Any]],
                  level: float, pvalue: float, approved: bool) -> dict[str, Any]:
    """The ``online`` block of a new ledger entry: the settings, this test's number, level,
    p value and decision, the total level spent and the level left for the next update."""
    p = 1.0 if pvalue is None or math.isnan(pvalue) else float(pvalue)
    after = [*entries, {"online": {"pvalue": p}}]
    spent = sum(float((e.get("online") or {}).get("level") or 0.0) for e in entries) + level
    n_tests = sum(1 for e in entries if isinstance(e.get("online"), Mapping))
    return {**dict(settings), "test": n_tests + 1, "level": float(level), "pvalue": p,
            "approved": bool(approved), "spent": spent,
            "next_level": next_level(settings, after)}


def check_levels(entries: Sequence[Mapping[str, Any]]) -> tuple[int, str] | None:
    """The first entry whose recorded level or numbering does not follow from the online
    settings and the earlier p values (None when every one does)."""
    n_tests = 0
    for i, e in enumerate(entries):
        o = e.get("online")
        if not isinstance(o, Mapping):
            continue  # an entry of another kind: not a test
        n_tests += 1
        try:
            settings = {k: o.get(k) for k in ("procedure", "alpha", "w0", "lambda")}
            want = next_level(settings, entries[:i])
            got = float(o["level"])
        except (InvalidParameterError, TypeError, ValueError, KeyError):
            return i + 1, f"entry {i + 1} has online settings rwe cannot read"
        if o.get("test") != n_tests:
            return i + 1, (f"entry {i + 1} records online test number {o.get('test')}, "
                           f"expected {n_tests}")
        if not math.isclose(got, want, rel_tol=_LEVEL_RTOL, abs_tol=1e-15):
            return i + 1, (f"entry {i + 1} was tested at level {got:.6g}, but the online "
                           f"procedure {settings['procedure']} gives {want:.6g} after the "
                           "earlier entries")
        if o.get("approved") and float(o.get("pvalue", 1.0)) > got:
            return i + 1, (f"entry {i + 1} is recorded as approved with p = "
                           f"{float(o['pvalue']):.4g} above its level {got:.4g}")
    return None


def budget_summary(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What the page and ``rwe ledger show`` report: tests so far, approvals, levels spent,
    the level the next update gets, and the looks at each sequestered test set."""
    tests = [e for e in entries if isinstance(e.get("online"), Mapping)]
    looks: dict[str, int] = {}
    for e in entries:
        ts = (e.get("test_set") or {}).get("sha256")
        if ts:
            looks[ts] = looks.get(ts, 0) + 1
    if not tests:
        return {"procedure": None, "alpha": None, "tests": 0, "approvals": 0, "spent": 0.0,
                "next_level": None, "looks": looks}
    last = tests[-1]["online"]
    settings = {k: last.get(k) for k in ("procedure", "alpha", "w0", "lambda")}
    return {**settings, "tests": len(tests),
            "approvals": sum(1 for e in tests if e["online"].get("approved")),
            "spent": float(sum(float(e["online"]["level"]) for e in tests)),
            "next_level": next_level(settings, entries), "looks": looks}
