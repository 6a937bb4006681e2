"""Reference values for rwe.stats (oracles O1-O4 of METHODS.md), with their sources.

R sessions (pROC 1.18, binom 1.1) that produce these numbers:

    library(pROC); data(aSAH)
    r.wfns  <- roc(aSAH$outcome, as.numeric(aSAH$wfns), direction = "<")
    r.s100b <- roc(aSAH$outcome, aSAH$s100b, direction = "<")
    r.ndka  <- roc(aSAH$outcome, aSAH$ndka, direction = "<")
    auc(r.wfns); var(r.wfns, method = "delong"); ci.auc(r.ndka, method = "delong")
    cov(r.wfns, r.ndka, method = "delong")
    roc.test(r.wfns, r.s100b, method = "delong")            # paired
    roc.test(r.wfns, r.s100b, method = "delong", alternative = "greater")
    power.roc.test(auc = 0.73, ncases = 41, ncontrols = 72)
    power.roc.test(r.s100b)
    power.roc.test(auc = 0.731368563685637, power = 0.95, kappa = 1.7)
    power.roc.test(auc = 0.73, ncases = 41, ncontrols = 72, power = 0.95, sig.level = NULL)
    binom::binom.confint(44, 51, methods = c("wilson", "exact"))

The pROC numbers are taken from pROC's own tests (tests/testthat/test-var.R, test-cov.R,
test-ci.auc.R, test-roc.test.R, test-power.roc.test.R) as copied into METHODS.md O2/O3.
"""

# ---------------------------------------------------------------- O1: FDA 2007 Tables 2 and 4
# (count, nobs) -> Wilson (low, high), Clopper-Pearson (low, high); rtol/atol 1e-6
# binom::binom.confint(x, n, methods = "wilson") / methods = "exact"
FDA_TABLE2 = {
    "sensitivity": ((44, 51), (0.742783, 0.931889), (0.737448, 0.942988)),
    "specificity": ((168, 169), (0.967249, 0.998955), (0.967474, 0.999850)),
}
FDA_TABLE4_WILSON = {
    "ppa": ((40, 44), (0.788408, 0.964078)),
    "npa": ((171, 176), (0.935230, 0.987806)),
    "opa": ((211, 220), (0.924094, 0.978331)),
}
# FDA's printed score CIs (percent, 1 decimal): (74.3, 93.2), (96.7, 99.9), (78.8, 96.4),
# (93.5, 98.8), (92.4, 97.8)
FDA_PRINTED = {
    (44, 51): (74.3, 93.2), (168, 169): (96.7, 99.9), (40, 44): (78.8, 96.4),
    (171, 176): (93.5, 98.8), (211, 220): (92.4, 97.8),
}
EDGE_CASES = {  # (x, n): (wilson, clopper-pearson)
    (0, 10): ((0.0, 0.277533), (0.0, 0.308497)),
    (10, 10): ((0.722467, 1.0), (0.691503, 1.0)),
    (1, 20): ((0.008881, 0.236131), (0.001265, 0.248733)),
}

# ---------------------------------------------------------------- O2: pROC DeLong on aSAH
# auc(r.x); var(r.x, method="delong"); ci.auc(r.x, method="delong")
AUC = {"wfns": 0.823678861788618, "s100b": 0.731368563685637, "ndka": 0.611957994579946}
VAR = {"wfns": 0.00146991470882363, "s100b": 0.00266868245717244, "ndka": 0.0031908105493913}
CI = {
    "wfns": (0.748534887819, 0.898822835758),
    "s100b": (0.630118211762, 0.832618915610),
    "ndka": (0.501244999271703, 0.722670989888189),  # pROC expected.ci.auc
}
# cov(r.a, r.b, method="delong")
COV = {
    ("wfns", "ndka"): -0.000532967856762438,
    ("ndka", "s100b"): -0.000756164938056579,
    ("s100b", "wfns"): 0.00119615567376754,
}
# roc.test(r.a, r.b) (paired DeLong, two-sided): Z, p, 95% CI of AUC_a - AUC_b
PAIRED = {
    ("wfns", "s100b"): (2.20898359144091, 0.0271757822291882,
                        (0.0104061769564846, 0.174214419249478)),
    ("wfns", "ndka"): (2.79777591868904, 0.00514557970691098,
                       (0.0634011709339876, 0.3600405634833566)),
    ("ndka", "s100b"): (-1.39077002573558, 0.164295175223054,
                        (-0.2876917446341914, 0.0488706064228094)),
}
# roc.test(r.wfns, r.s100b, alternative = "greater" / "less")
ONE_SIDED = {"greater": 0.0135878911145941, "less": 0.986412108885406}

# ---------------------------------------------------------------- O3: pROC power.roc.test
POWER_41_72_073 = 0.9897453          # power.roc.test(auc=0.73, ncases=41, ncontrols=72)
POWER_S100B = 0.9904833              # power.roc.test(r.s100b)  (ncases 41, ncontrols 72)
SAMPLE_SIZE = (29.29764, 49.806)     # power.roc.test(auc=0.731368563685637, power=.95, kappa=1.7)
SIG_LEVEL = 0.009238584              # power.roc.test(auc=.73, ncases=41, ncontrols=72, power=.95,
                                     #                sig.level=NULL)

# ---------------------------------------------------------------- O4: AUC non-inferiority (derived)
# margin 0.05, one-sided alpha 0.025; derived in METHODS.md from the O2 paired tests
NI = {
    ("wfns", "s100b"): dict(difference=0.092310298103, se=0.041788584787, statistic=3.405483,
                            pvalue=3.302e-4, lower_bound=0.010406, noninferior=True),
    ("ndka", "s100b"): dict(difference=-0.119410569106, se=0.085859320302, statistic=-0.808422,
                            pvalue=0.790576, lower_bound=-0.287692, noninferior=False),
}

# ---------------------------------------------------------------- exact Poisson interval
# R: poisson.test(10)$conf.int -> 4.795389 18.390356 (Garwood); divided by T = 5 for O/E
POISSON_10 = (4.795389, 18.390356)
