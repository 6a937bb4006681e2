"""The sentences of the drift findings (their templates and, where a count behind them can
be below the small-cell threshold, the wording used then).

Kept apart from the analysis so that a finding read back from JSON (a dossier notebook, the
model card) finds its text without importing scipy or statsmodels.
"""

from __future__ import annotations

from rwe._evidence import register_finding_template

register_finding_template(
    "drift.input", "{feature}: {test} drift ({effect_name} >= {threshold:g}) in {drifted} of "
    "{cells} window x level cells (largest {max_effect:.3f} in {where}); first in {first}.")
register_finding_template(
    "drift.prediction", "Predicted scores (version {version}): {test} drift ({effect_name} >= "
    "{threshold:g}) in {drifted} of {cells} cells (largest {max_effect:.3f} in {where}).")
register_finding_template(
    "drift.alarm", "{method} alarm on {metric} for {group} = {level} in {window} (run length "
    "{run_length} {unit}); {alarms} alarm(s) in all.")
register_finding_template(
    "drift.no_alarm", "No {method} alarm on {metric} by {group} ({levels} level(s), limit "
    "{limit:.3g}, in-control ARL {arl0:.4g} {unit}).")
register_finding_template(
    "drift.classifier", "Domain classifier ({window}): out-of-fold AUROC {auroc:.3f} ({level:.0%}"
    " CI {ci_low:.3f} to {ci_high:.3f}); shift driven by {top}.")
register_finding_template(
    "drift.no_data", "{windows} window x level cell(s) have no data (e.g. {example}): shown as "
    "explicit 'no data in this window' rows, never as no drift.")
register_finding_template(
    "drift.estimated", "{windows} window x level cell(s) without labels: performance is "
    "ESTIMATED from the scores assuming calibration ({doubtful} with a doubtful assumption).")
register_finding_template(
    "drift.case_mix", "Case mix: {cells} category x window x level cell(s) with |SMD| >= "
    "{threshold:g} against the reference (largest: {feature} = {category}, SMD {smd:.2f}).")
register_finding_template(
    "drift.integrity", "Integrity: {feature} has {out_of_range} value(s) outside the "
    "reference's range or categories ({share:.1%}) and {missing} missing.")
