"""Reference values for rwe.metrics tests (from /work/shared/docs/METHODS.md).

O1: FDA 2007 Statistical Guidance on Reporting Results from Studies Evaluating Diagnostic
Tests, Table 2 (TP=44, FN=7, FP=1, TN=168). Wilson and Clopper-Pearson bounds computed with
R: ``binom::binom.confint(44, 51, methods = c("wilson", "exact"))``.

O5: exact saturated calibration example (two prediction values, closed form):
100 patients with p = 0.2 of whom 30 have events, 100 with p = 0.6 of whom 50 have events.
slope = (logit .5 - logit .3) / (logit .6 - logit .2); intercept = logit .3 - slope logit .2.
R: ``glm(y ~ qlogis(p), family = binomial)``; ``glm(y ~ 1, offset = qlogis(p), ...)``.
"""

O1_COUNTS = {"tp": 44, "fn": 7, "fp": 1, "tn": 168}
O1 = {
    "sensitivity": {"estimate": 44 / 51, "wilson": (0.742783, 0.931889),
                    "clopper-pearson": (0.737448, 0.942988)},
    "specificity": {"estimate": 168 / 169, "wilson": (0.967249, 0.998955),
                    "clopper-pearson": (0.967474, 0.999850)},
}
O1_RTOL = 5e-6  # values published to 6 decimals

O5 = {
    "calibration_slope": 0.4728859397,
    "calibration_slope_intercept": -0.1917387487,
    "oe_ratio": 1.0,
    "calibration_intercept": 0.0,
    "brier": 0.24,
    "ece": 0.10,
    "spiegelhalter_z": 3.086067,
    "spiegelhalter_p": 0.002028,
}
O5_BIN_EDGES = (0.0, 0.4, 1.0)
