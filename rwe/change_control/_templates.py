"""The sentences of the change-control findings (their templates and, where a count behind them can
be below the small-cell threshold, the wording used then).

Kept apart from the analysis so that a finding read back from JSON (a dossier notebook, the
model card) finds its text without importing scipy or statsmodels.
"""

from __future__ import annotations

from rwe._evidence import register_finding_template

register_finding_template(
    "change_control.verdict", "{verdict}: {banner} ({fail} failed, {not_judged} not judged, "
    "{passed} passed of {required} required criteria; one-sided level {level:.4g}).")
register_finding_template(
    "change_control.criterion_failed", "{criterion} fails: {where} vs {comparator}, {quantity} "
    "{estimate:+.4f} with lower bound {bound:+.4f} at or below {threshold:+g}.",
    "{criterion} fails in {where} (counts suppressed).")
register_finding_template(
    "change_control.improvement", "Improvement shown: {metric} in {where} vs {comparator}: "
    "{estimate:+.4f} ({level:.1%} CI {ci_low:+.4f} to {ci_high:+.4f}).",
    "Improvement shown: {metric} in {where} (counts suppressed).")
register_finding_template(
    "change_control.loss", "Loss shown: {metric} in {where} vs {comparator}: {estimate:+.4f} "
    "({level:.1%} CI {ci_low:+.4f} to {ci_high:+.4f}){beyond}.",
    "Loss shown: {metric} in {where} (counts suppressed).")
register_finding_template(
    "change_control.cells_outside", "{cells} subgroup cell(s) have fewer rows or events than "
    "the criteria need (min_n {min_n}, min_events {min_events}) and were not judged: "
    "{examples}.")
register_finding_template(
    "change_control.cumulative", "Against the original version {original}: {metric} of "
    "{version} {estimate:+.4f} ({level:.1%} CI {ci_low:+.4f} to {ci_high:+.4f}).")
register_finding_template(
    "change_control.not_recorded", "This comparison was not recorded in a ledger: it is not a "
    "change-control decision, and the look at the test set is not counted (CHG-6).")
register_finding_template(
    "change_control.test_set_not_pinned", "The plan does not pin the test set by its content "
    "hash: sequestration is not proven (CHG-3); this test set's sha256 is {sha256}.")
register_finding_template(
    "change_control.model_identity_missing", "No model identity (weights sha256, PRV-6) is "
    "given for version(s) {versions}.")
