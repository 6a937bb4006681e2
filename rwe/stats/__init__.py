"""Statistical primitives shared by every rwe analysis.

Intervals for proportions (Wilson, Clopper-Pearson), Wald and exact Poisson ratios,
likelihood ratios; AUROC with DeLong variance (fast midrank algorithm), paired and unpaired
DeLong tests and AUROC non-inferiority; paired proportions (Tango, Newcombe, McNemar
variants); online error control across successive tests (LORD++, alpha-investing, SAFFRON);
multiplicity adjustment; random-effects meta-analysis (DerSimonian-Laird) of site
estimates; power and sample size (Obuchowski for AUROC, performance goals for proportions);
and the vectorized Poisson (cluster) bootstrap engine with percentile and BCa intervals.

Every interval is an :class:`rwe._results.Interval`; every result is a frozen dataclass with
``to_frame()``, ``to_dict()``, ``summary()`` and ``_repr_html_()``.
"""

from __future__ import annotations

from ._bootstrap import (
    BOOTSTRAP_METHODS,
    MAX_NAN_FRACTION,
    NAN_REPLICATES_SUFFIX,
    BootstrapResult,
    bootstrap,
    bootstrap_interval,
    bootstrap_resamples,
    poisson_weights,
)
from ._clustered import cluster_ratio_variance, obuchowski_auc
from ._delong import (
    AUROC_NEEDS_BOTH_CLASSES,
    DeLongResult,
    DeLongTestResult,
    NonInferiorityResult,
    auc_delong,
    auc_noninferiority,
    delong_covariance,
    delong_segments,
    delong_test,
    delong_unpaired_test,
    weighted_auc,
)
from ._intervals import (
    AUC_INTERVALS,
    PROPORTION_CI_METHODS,
    REASON_UNDEFINED_BOUND,
    REASON_UNREACHABLE,
    GoalTestResult,
    LikelihoodRatioResult,
    auc_interval,
    judge_goal,
    likelihood_ratios,
    performance_goal_test,
    poisson_ratio_ci,
    proportion_ci,
    wald_ci,
    wilson_effective,
)
from ._logistic import (
    REASON_NO_CONVERGENCE,
    LogisticFit,
    fit_logistic,
    logistic_reasons,
)
from ._meta import META_METHODS, MetaAnalysisResult, random_effects_meta
from ._online import ONLINE_PROCEDURES, OnlineTestResult, default_gamma, online_test
from ._paired import (
    MCNEMAR_METHODS,
    PAIRED_DIFFERENCE_METHODS,
    PairedDifferenceResult,
    mcnemar_from_counts,
    paired_difference,
    paired_difference_ci,
    paired_difference_pvalue,
)
from ._power import (
    auc_power,
    auc_sample_size,
    auc_sig_level,
    ci_half_width_sample_size,
    proportion_goal_sample_size,
)
from ._tests import (
    MCNEMAR_EXACT_BELOW,
    PVALUE_ADJUSTMENTS,
    McNemarResult,
    adjust_pvalues,
    mcnemar_test,
)

# mergeable summaries: rwe.stats.summaries (imported on use; rwe.summarize)

__all__ = [
    # intervals and goal tests
    "PROPORTION_CI_METHODS", "proportion_ci", "wald_ci", "poisson_ratio_ci",
    "likelihood_ratios", "performance_goal_test", "judge_goal", "REASON_UNREACHABLE",
    "REASON_UNDEFINED_BOUND", "AUC_INTERVALS", "auc_interval", "wilson_effective",
    # clustered data (several rows per patient)
    "cluster_ratio_variance", "obuchowski_auc",
    # AUROC (DeLong)
    "AUROC_NEEDS_BOTH_CLASSES", "auc_delong", "delong_covariance", "delong_test",
    "delong_unpaired_test", "auc_noninferiority", "weighted_auc", "delong_segments",
    # the logistic fitter
    "fit_logistic", "logistic_reasons", "LogisticFit", "REASON_NO_CONVERGENCE",
    # tests and multiplicity
    "MCNEMAR_EXACT_BELOW", "MCNEMAR_METHODS", "mcnemar_test", "mcnemar_from_counts",
    "PVALUE_ADJUSTMENTS", "adjust_pvalues",
    # paired proportions (two versions on the same cases)
    "PAIRED_DIFFERENCE_METHODS", "paired_difference", "paired_difference_ci",
    "paired_difference_pvalue",
    # online testing across successive updates
    "ONLINE_PROCEDURES", "online_test", "default_gamma",
    # meta-analysis of independent estimates (sites)
    "META_METHODS", "random_effects_meta",
    # power and sample size
    "auc_power", "auc_sample_size", "auc_sig_level", "proportion_goal_sample_size",
    "ci_half_width_sample_size",
    # bootstrap engine
    "BOOTSTRAP_METHODS", "MAX_NAN_FRACTION", "NAN_REPLICATES_SUFFIX", "poisson_weights",
    "bootstrap_interval", "bootstrap", "bootstrap_resamples",
    # result classes (returned, never built by users)
    "DeLongResult", "DeLongTestResult", "NonInferiorityResult", "LikelihoodRatioResult",
    "GoalTestResult", "McNemarResult", "BootstrapResult", "PairedDifferenceResult",
    "OnlineTestResult", "MetaAnalysisResult",
]
