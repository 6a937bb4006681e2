"""The sentences of the subgroup-performance findings (their templates and, where a count behind them can
be below the small-cell threshold, the wording used then).

Kept apart from the analysis so that a finding read back from JSON (a dossier notebook, the
model card) finds its text without importing scipy or statsmodels.
"""

from __future__ import annotations

from rwe._evidence import register_finding_template

register_finding_template(
    "subgroups.overall",
    "Overall (n={n:,}, {events:,} events; version {version}, threshold {threshold:g}, "
    "{level:.0%} CIs): {estimates}.")
register_finding_template(
    "subgroups.goal_not_met", "Goal not met - {criterion}: not met in {fail} of {cells} "
    "cell(s){worst}.")
register_finding_template(
    "subgroups.goal_met", "Goal met - {criterion} (in all {cells} cell(s)).")
register_finding_template(
    "subgroups.goal_not_evaluable", "Goal not evaluable - {criterion}: {not_evaluable} of "
    "{cells} cell(s) could not be judged ({why}).")
register_finding_template(
    "subgroups.heterogeneity", "{metric} differs across {groups} ({multiplicity}-adjusted "
    "p < {alpha:g}).")
register_finding_template(
    "subgroups.largest_gap", "Largest fairness gap among single attributes: {definition} "
    "across {group} = {gap:.3f} ({level:.0%} CI {ci_low:.3f} to {ci_high:.3f}; {level_max} vs "
    "{level_min}).")
register_finding_template(
    "subgroups.cluster_adjusted",
    "Rows repeat patients ({patients:,} patients): the intervals of {adjusted} account for it "
    "(largest design effect {max_deff:.2f}); {others} keep row-level intervals.")
register_finding_template(
    "subgroups.not_cluster_adjusted",
    "The rows repeat patients but this analysis has no patient index (e.g. merged site "
    "summaries): the intervals of {metrics} assume independent rows and are too narrow.")
register_finding_template(
    "subgroups.small_cells", "{cells} subgroup cell(s) are below the minimum size (n >= "
    "{min_n}, events >= {min_events}) or degenerate for at least one metric: their estimates "
    "are shown but not judged.")
