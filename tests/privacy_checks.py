"""Independent checks of a dossier's disclosure plan, shared by the dossier and federation
tests: the counts a subgroup table reveals, and the small-cell rule with complementary
suppression checked on them."""

from __future__ import annotations

from collections.abc import Callable

from rwe.dossier._privacy import SIZE, THRESHOLD, DisclosurePlan, _partitions


def derived_cells(rec: dict, key_of: Callable | None = None,
                  keep: Callable | None = None) -> dict[tuple, dict]:
    """Per (group, level) of a subgroups record (``key_of(group, level)`` names the cell,
    ``keep(row)`` selects the rows): n, events, non-events and, where the sensitivity /
    specificity are shown, the confusion cells they reveal."""
    out: dict[tuple, dict] = {}
    for r in rec["table"]:
        if keep is not None and not keep(r):
            continue
        key = ("overall", "all") if r["group"] == "overall" else (r["group"], r["level"])
        if key_of is not None:
            key = key_of(*key)
        c = out.setdefault(key, {"n": r["n"], "events": r["events"],
                                 "nonevents": r["n"] - r["events"]})
        if r["estimate"] is None:
            continue
        if r["metric"] == "sensitivity":
            c["tp"] = round(r["estimate"] * r["events"])
            c["fn"] = r["events"] - c["tp"]
        elif r["metric"] == "specificity":
            c["tn"] = round(r["estimate"] * (r["n"] - r["events"]))
            c["fp"] = r["n"] - r["events"] - c["tn"]
    return out


def check_rule(cells: dict, plan: DisclosurePlan, k: int) -> list[str]:
    """Independent check of the rule: no shown count in 1..k-1; in every partition with a
    shown total, the hidden cells number 0 or >= 2 and hold 0 or >= k of each count."""
    problems = []
    fam = {"n": SIZE, "events": SIZE, "nonevents": SIZE, "tp": THRESHOLD, "fn": THRESHOLD,
           "tn": THRESHOLD, "fp": THRESHOLD}
    for key, qs in cells.items():
        for q, v in qs.items():
            if 1 <= v < k and not plan.hides(*key, fam[q]):
                problems.append(f"{key} {q}={v} shown")
    for total, members in _partitions(cells, {}):
        if total not in cells:
            continue
        for f, qs in ((SIZE, ("n", "events", "nonevents")), (THRESHOLD, ("tp", "fn", "tn",
                                                                          "fp"))):
            mem = [c for c in members if any(q in cells[c] for q in qs)]
            hid = [c for c in mem if plan.hides(*c, f)]
            if not hid or plan.hides(*total, f):
                continue
            if len(hid) == 1:
                problems.append(f"{total} {f}: one hidden cell {hid[0]}")
            for q in qs:
                s = sum(cells[c].get(q, 0) for c in hid)
                if 1 <= s < k:
                    problems.append(f"{total} {f}: hidden {q} sum {s}")
    return problems
