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

from rwe._lazy import lazy_exports

#: Public name -> the private module that defines it (imported on first use: a dossier
#: kernel that reads a saved result does not load scipy.stats and statsmodels).
_LAZY = {
    "BOOTSTRAP_METHODS": "_bootstrap", "MAX_NAN_FRACTION": "_bootstrap",
    "NAN_REPLICATES_SUFFIX": "_bootstrap", "BootstrapResult": "_bootstrap",
    "bootstrap": "_bootstrap", "bootstrap_interval": "_bootstrap",
    "bootstrap_resamples": "_bootstrap", "poisson_weights": "_bootstrap",
    "cluster_ratio_variance": "_clustered", "obuchowski_auc": "_clustered",
    "AUROC_NEEDS_BOTH_CLASSES": "_delong", "DeLongResult": "_delong",
    "DeLongTestResult": "_delong", "NonInferiorityResult": "_delong", "auc_delong": "_delong",
    "auc_noninferiority": "_delong", "delong_covariance": "_delong", "delong_segments": "_delong",
    "delong_test": "_delong", "delong_unpaired_test": "_delong", "weighted_auc": "_delong",
    "AUC_INTERVALS": "_intervals", "PROPORTION_CI_METHODS": "_intervals",
    "REASON_UNDEFINED_BOUND": "_intervals", "REASON_UNREACHABLE": "_intervals",
    "GoalTestResult": "_intervals", "LikelihoodRatioResult": "_intervals",
    "auc_interval": "_intervals", "judge_goal": "_intervals", "likelihood_ratios": "_intervals",
    "performance_goal_test": "_intervals", "poisson_ratio_ci": "_intervals",
    "proportion_ci": "_intervals", "wald_ci": "_intervals", "wilson_effective": "_intervals",
    "REASON_NO_CONVERGENCE": "_logistic", "LogisticFit": "_logistic", "fit_logistic": "_logistic",
    "logistic_reasons": "_logistic",
    "META_METHODS": "_meta", "MetaAnalysisResult": "_meta", "random_effects_meta": "_meta",
    "ONLINE_PROCEDURES": "_online", "OnlineTestResult": "_online", "default_gamma": "_online",
    "online_test": "_online",
    "MCNEMAR_METHODS": "_paired", "PAIRED_DIFFERENCE_METHODS": "_paired",
    "PairedDifferenceResult": "_paired", "mcnemar_from_counts": "_paired",
    "paired_difference": "_paired", "paired_difference_ci": "_paired",
    "paired_difference_pvalue": "_paired",
    "auc_power": "_power", "auc_sample_size": "_power", "auc_sig_level": "_power",
    "ci_half_width_sample_size": "_power", "proportion_goal_sample_size": "_power",
    "MCNEMAR_EXACT_BELOW": "_tests", "PVALUE_ADJUSTMENTS": "_tests", "McNemarResult": "_tests",
    "adjust_pvalues": "_tests", "mcnemar_test": "_tests",
}

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

__getattr__, __dir__ = lazy_exports("rwe.stats", _LAZY)
