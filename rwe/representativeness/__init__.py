"""Representativeness: does the cohort look like the people the device is meant for?

Compares an evaluation cohort with a reference (target) population (EVIDENCE.md REP-1..REP-6):
shares with Wilson intervals and participation-to-prevalence ratios (PPR) per category,
chi-square goodness of fit and total variation distance per attribute, standardised mean
differences (Austin 2009), Tipton's generalizability index B, intersectional coverage,
sample-size adequacy per subgroup, site/equipment coverage and missingness by subgroup, with
typed verdicts on the pre-specified checks and typed findings. The cohort is an EvaluationSet or
a mergeable summary (:func:`rwe.stats.summaries.summarize`). Reference populations are versioned, cited CSV
files in ``datasets/reference`` (see its README.md data cards) or are built from shares or rows.

The analysis is :func:`assess_representativeness` (top level: ``rwe.assess_representativeness``;
``representativeness`` is the same function under its name inside this subpackage).
"""

from rwe._lazy import lazy_exports

#: Public name -> the private module that defines it (imported on first use: the dossier's
#: kernels read saved results without loading pandas, scipy and statsmodels).
_LAZY = {
    "B_BANDS": "_indices", "TiptonResult": "_indices", "bhattacharyya_coefficient": "_indices",
    "generalizability_index": "_indices", "interpret_generalizability": "_indices",
    "propensity_scores": "_indices", "smd": "_indices", "smd_from_summary": "_indices",
    "tipton_index": "_indices", "SHARE_TOLERANCE": "_reference",
    "ReferencePopulation": "_reference", "available_references": "_reference",
    "load_reference": "_reference", "reference_dir": "_reference",
    "FLAG_ABSENT": "_representativeness", "FLAG_ADEQUATE": "_representativeness",
    "FLAG_NO_DATA": "_representativeness", "FLAG_NOT_IN_REFERENCE": "_representativeness",
    "FLAG_OVER": "_representativeness", "FLAG_UNDER": "_representativeness",
    "FLAG_ZERO_REFERENCE": "_representativeness",
    "RepresentativenessResult": "_result",
    "assess_representativeness": "_representativeness",
    "compare_cohorts": "_representativeness", "representativeness": "_representativeness",
    "representativeness_from_protocol": "_representativeness",
    "unevaluable_attributes": "_representativeness",
    "unevaluable_from_protocol": "_representativeness",
}

__all__ = [
    # analysis
    "assess_representativeness",
    "representativeness",
    "representativeness_from_protocol",
    "unevaluable_attributes",
    "unevaluable_from_protocol",
    "compare_cohorts",
    "RepresentativenessResult",
    # reference populations
    "ReferencePopulation",
    "load_reference",
    "available_references",
    "reference_dir",
    "SHARE_TOLERANCE",
    # indices
    "smd",
    "smd_from_summary",
    "bhattacharyya_coefficient",
    "generalizability_index",
    "interpret_generalizability",
    "propensity_scores",
    "tipton_index",
    "TiptonResult",
    "B_BANDS",
    # flags of the shares table
    "FLAG_UNDER",
    "FLAG_ADEQUATE",
    "FLAG_OVER",
    "FLAG_NOT_IN_REFERENCE",
    "FLAG_ABSENT",
    "FLAG_ZERO_REFERENCE",
    "FLAG_NO_DATA",
]



__getattr__, __dir__ = lazy_exports("rwe.representativeness", _LAZY)
