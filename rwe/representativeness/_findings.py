"""The sentences of the representativeness findings (their templates and the wording used
when a count behind them is below the small-cell threshold ``k``).

Kept apart from :mod:`rwe.representativeness._checks` so that a finding read back from JSON (a
dossier notebook, the model card) finds its text without importing numpy or pandas.
"""

from __future__ import annotations

from rwe._evidence import register_finding_template

__all__ = ["FINDING_CODES"]

_HIDDEN = "a count below {k} is not shown"
#: Appended to every finding that rests on the reference shares: the reference's age range
#: against the intended use, and whether its figures were verified (empty when neither applies).
_CAVEAT = "{caveat}"

#: code -> (template, wording when a count behind it is below k)
FINDING_CODES: dict[str, tuple[str, str | None]] = {
    "representativeness.under_represented": (
        "{category} ({attribute}): {cohort_share:.1%} of cohort (n={n}; {level:.0%} CI "
        "{ci_low:.1%}-{ci_high:.1%}) vs {reference_share:.1%} of reference, PPR {ppr:.2f} "
        "({ppr_low:.2f}-{ppr_high:.2f}), {flag}" + _CAVEAT,
        "{category} ({attribute}): {flag} with respect to the reference (" + _HIDDEN + ")"
        + _CAVEAT),
    "representativeness.over_represented": (
        "{category} ({attribute}): {cohort_share:.1%} of cohort (n={n}; {level:.0%} CI "
        "{ci_low:.1%}-{ci_high:.1%}) vs {reference_share:.1%} of reference, PPR {ppr:.2f} "
        "({ppr_low:.2f}-{ppr_high:.2f}), {flag}" + _CAVEAT,
        "{category} ({attribute}): {flag} with respect to the reference (" + _HIDDEN + ")"
        + _CAVEAT),
    "representativeness.absent": (
        "{category} ({attribute}): absent from cohort (0 rows) although {reference_share:.1%} "
        "of reference" + _CAVEAT, None),
    "representativeness.not_in_reference": (
        "{category} ({attribute}): {n} cohort row(s) in a category the reference does not "
        "define ({why})" + _CAVEAT,
        "{category} ({attribute}): cohort rows in a category the reference does not define "
        "({why}; " + _HIDDEN + ")" + _CAVEAT),
    "representativeness.zero_reference": (
        "{category} ({attribute}): {n} cohort row(s) but reference share 0: PPR undefined"
        + _CAVEAT,
        "{category} ({attribute}): cohort rows but reference share 0: PPR undefined ("
        + _HIDDEN + ")" + _CAVEAT),
    "representativeness.no_data": (
        "{attribute}: missing for every cohort row; its representativeness cannot be evaluated",
        None),
    "representativeness.distribution_differs": (
        "{attribute}: cohort distribution differs from reference (total variation distance "
        "{tvd:.3f}; chi-square({df}) = {chi2:.1f}, p {p_text})" + _CAVEAT,
        "{attribute}: cohort distribution differs from reference (chi-square test; "
        + _HIDDEN + ")" + _CAVEAT),
    "representativeness.reference_age_scope": (
        "{attributes_text}: the reference shares ({reference!r}) cover {reference_ages_text}, "
        "{intended_text}; {consequence}", None),
    "representativeness.reference_unverified": (
        "Reference {reference!r}{version_text}: its figures{which_text} were not verified "
        "against the published tables; every share, PPR and test {on_text} rests on "
        "unverified figures (see its card{card_text})", None),
    "representativeness.smd_imbalanced": (
        "{term}: SMD {smd:.2f} vs {comparison} (|SMD| > {threshold:g})",
        "{term}: imbalanced vs {comparison} (|SMD| > {threshold:g}; " + _HIDDEN + ")"),
    "representativeness.development_shift": (
        "{term}: SMD {smd:.2f}, shift from the development population (|SMD| > "
        "{threshold:g})",
        "{term}: shifted from the development population (|SMD| > {threshold:g}; "
        + _HIDDEN + ")"),
    "representativeness.generalizability": (
        "Generalizability index B = {b:.3f} vs the comparison population ({interpretation})",
        "Generalizability index B computed vs the comparison population (" + _HIDDEN + ")"),
    "representativeness.development_generalizability": (
        "Shift from the development population: generalizability index B = {b:.3f} "
        "({interpretation} similarity of the cohort to the development population)",
        "Shift from the development population: generalizability index B computed ("
        + _HIDDEN + ")"),
    "representativeness.generalizability_not_computed": (
        "Tipton's generalizability index not computed: {reason}", None),
    "representativeness.small_cells": (
        "{intersection}: {small} of {cells} intersectional cells have fewer than {min_n} rows "
        "({empty} empty), e.g. {examples}",
        "{intersection}: {small} of {cells} intersectional cells have fewer than {min_n} rows "
        "({empty} empty), e.g. {example_cells} (" + _HIDDEN + ")"),
    "representativeness.sample_size_short": (
        "{short} subgroup(s) have fewer than the {required} {basis} needed for a "
        "±{target_half_width:g} {level:.0%} interval at an assumed value of "
        "{assumed_value:g}: {listed}{more}",
        "{short} subgroup(s) have fewer than the {required} {basis} needed for a "
        "±{target_half_width:g} {level:.0%} interval at an assumed value of "
        "{assumed_value:g}: {listed_names}{more} (" + _HIDDEN + ")"),
    "representativeness.sample_size_short_intersections": (
        "{short} of {cells} intersectional cells have fewer than the {required} {basis} needed",
        None),
    "representativeness.sites": ("{sites} site(s){equipment_text}", None),
    "representativeness.sites_empty": (
        "{combinations} site x equipment combination(s) have no rows: {listed}", None),
    "representativeness.missing_overall": (
        "{variable} missing for {fraction:.1%} of rows overall ({n_missing}/{n}; threshold "
        "{threshold:.0%})",
        "{variable} missing for at least {threshold:.0%} of rows overall (" + _HIDDEN + ")"),
    "representativeness.missing_in_subgroups": (
        "{variable} missing for at least {threshold:.0%} of rows in {subgroups} subgroup(s) "
        "although {fraction:.1%} overall: {listed}{more}",
        "{variable} missing for at least {threshold:.0%} of rows in {subgroups} subgroup(s) "
        "although {fraction:.1%} overall: {listed_names}{more} (" + _HIDDEN + ")"),
}
for _code, (_template, _suppressed) in FINDING_CODES.items():
    register_finding_template(_code, _template, _suppressed)
