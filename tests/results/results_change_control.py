"""Reference values for paired proportions and online testing (ORACLES-2.md), with sources.

Paired table notation: (a, b, c, d) = (both positive, version 1 only, version 2 only, neither);
difference = (b - c) / n = p1 - p2. Values were published (Tango 1998, Newcombe 1998) or
produced by R packages contingencytables (Fagerland, Lydersen & Laake 2017) and onlineFDR
(GPL: only their numbers are used here; the implementations follow the papers).

    # contingencytables::Tango_asymptotic_score_CI_paired_2x2(cavo_2012)       (-0.1240, -0.0054)
    # contingencytables::Newcombe_square_and_add_CI_paired_2x2(cavo_2012)      (-0.1186, -0.0046)
    # contingencytables::Wald_CI_diff_paired_2x2(cavo_2012)                    (-0.1184, -0.0058)
    # contingencytables::McNemar_asymptotic_test_paired_2x2(cavo_2012)  Z = -2.132, P = 0.033006
    # ... _asymptotic_test_CC_ ... P = 0.055009; McNemar_exact_cond_test_ P = 0.052479;
    # McNemar_midP_test_ P = 0.034690
    # onlineFDR::LORD(p, alpha = 0.05, version = "++")     (w0 = alpha / 10, default gammai)
    # onlineFDR::Alpha_investing(p, alpha = 0.05, random = FALSE)
"""

# (a, b, c, d), level, method, estimate, (low, high), digits printed in the source
PAIRED_CI = [
    ((4, 9, 3, 16), 0.95, "tango", 0.1875, (-0.027, 0.390), 3),       # Tango 1998, Table VII
    ((43, 0, 1, 0), 0.90, "tango", -0.0227, (-0.096, 0.037), 3),      # Tango 1998, Table V
    ((20, 12, 2, 16), 0.95, "newcombe", 0.2, (0.0562, 0.3292), 4),    # Newcombe 1998, method 10
    ((59, 6, 16, 80), 0.95, "tango", -0.0621, (-0.1240, -0.0054), 4),  # cavo_2012
    ((59, 6, 16, 80), 0.95, "newcombe", -0.0621, (-0.1186, -0.0046), 4),
    ((59, 6, 16, 80), 0.95, "wald", -0.0621, (-0.1184, -0.0058), 4),
]

# McNemar on cavo_2012 (b, c) = (6, 16): method -> (statistic or None, P, digits of P)
MCNEMAR_CAVO = {"asymptotic": (-2.132, 0.033006), "chi2-corrected": (None, 0.055009),
                "exact": (None, 0.052479), "mid-p": (None, 0.034690)}

ONLINE_PVALUES = [2.90e-08, 0.06743, 0.01514, 0.08174, 0.00171, 3.60e-05, 0.79149, 0.27201,
                  0.28295, 7.59e-08, 0.69274, 0.30443, 0.00136, 0.72342, 0.54757]
LORD_PP_LEVELS = [0.0002675839, 0.0024664457, 0.0005732818, 0.0004872805, 0.0004059066,
                  0.0003447286, 0.0029745013, 0.0008450114, 0.0007305648, 0.0006243143,
                  0.0032185913, 0.0010617227, 0.0009256825, 0.0008019657, 0.0007059610]
LORD_PP_REJECTED = [1, 6, 10]
ALPHA_INVESTING_LEVELS = [0.010818925, 0.021406257, 0.007164201, 0.003757589, 0.002374706,
                          0.023680499, 0.044095287, 0.015842430, 0.008711190, 0.005700295,
                          0.026865786, 0.011205456, 0.006863124, 0.027979664, 0.011945806]
ALPHA_INVESTING_REJECTED = [1, 5, 6, 10, 13]
