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

from rwe.representativeness._indices import (
    B_BANDS,
    TiptonResult,
    bhattacharyya_coefficient,
    generalizability_index,
    interpret_generalizability,
    propensity_scores,
    smd,
    smd_from_summary,
    tipton_index,
)
from rwe.representativeness._reference import (
    SHARE_TOLERANCE,
    ReferencePopulation,
    available_references,
    load_reference,
    reference_dir,
)
from rwe.representativeness._representativeness import (
    FLAG_ABSENT,
    FLAG_ADEQUATE,
    FLAG_NO_DATA,
    FLAG_NOT_IN_REFERENCE,
    FLAG_OVER,
    FLAG_UNDER,
    FLAG_ZERO_REFERENCE,
    RepresentativenessResult,
    assess_representativeness,
    compare_cohorts,
    representativeness,
    representativeness_from_protocol,
    unevaluable_attributes,
    unevaluable_from_protocol,
)

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

