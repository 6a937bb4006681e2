"""Benchmark rwe.subgroups against its peers, side by side in one process.

usage:
  python benchmarks/bench_subgroups.py bootstrap [--n 1000000] [--n-boot 1000]
        [--fairlearn-n 20000] [--fairlearn-boot 20] [--numpy-n 1000000] [--numpy-boot 200]
        [--cluster-patients 300000]
  python benchmarks/bench_subgroups.py analytic [--n 10000000]
  python benchmarks/bench_subgroups.py partitions [--n 10000000] [--parts 10] [--bins 2048]
  python benchmarks/bench_subgroups.py demo [--protocol protocols/demo.yaml]
  python benchmarks/bench_subgroups.py all

(a) bootstrap: the synthetic data of /work/shared/bench/anchor_fairlearn.py and
    limit_bootstrap.py (sex x race = 8 cells, 20% prevalence, the same score formula,
    threshold 0.5); AUROC + sensitivity + specificity + PPV with bootstrap CIs.
    fairlearn MetricFrame is timed at a small size and scaled linearly in rows and
    replicates (its cost is linear in both); the numpy per-row Poisson bound
    (limit_bootstrap.py's code, inlined) is timed at --numpy-n x --numpy-boot and scaled
    linearly in replicates; rwe (subgroup_performance, ci_method="bootstrap") is timed at
    --n x --n-boot. Targets: rwe >= 1000x faster than fairlearn, not slower than numpy.
(b) analytic: --n rows, 20 intersectional cells (sex x race5 x site2), all threshold
    metrics + AUROC with Wilson + DeLong intervals. Target: rwe time / one
    sklearn.metrics.roc_auc_score call on all rows <= 1; peak traced memory of the rwe call
    (tracemalloc, a separate run) <= 2 x the bytes of the input columns.
(p) partitions: the analytic data and metrics, cut into --parts row partitions; each is
    summarized (rwe.summarize), the summaries merged (merge_summaries) and the merged summary
    finalized (subgroup_performance on it), against one summarize + finalize of all rows.
    Target at full resolution: partitions / single <= 1.2 (the tables must agree to 1e-12).
    Also at a declared resolution (--bins uniform bins, the threshold an edge), where the
    summaries are small and merging is cheap (AUROC within the reported bound).
(c) demo: subgroup_performance_from_protocol on the demo protocol (100k rows, repeated
    patients, 6 attributes + 2 intersections, fairness gaps with 1000 cluster-bootstrap
    replicates, calibration metrics), as run in the dossier notebook. The first call
    includes the lazy imports (statsmodels), like a fresh notebook kernel. Target: < 6 s.

Never a test: timings depend on the machine. Compare the ratios printed in one run.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc

import numpy as np
import pandas as pd


def anchor_data(n: int, seed: int = 0):
    """Exactly the data generation of anchor_fairlearn.py."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], n)
    race = rng.choice(["White", "Black", "Asian", "Other"], n, p=[.6, .13, .07, .2])
    y = rng.random(n) < 0.2
    score = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.5 * y - 1)))
    return sex, race, y, score


def make_evset(frame: pd.DataFrame, attributes):
    from rwe.data import ColumnRoles, EvaluationSet

    roles = ColumnRoles(scores={"v1": "score"}, label="y", attributes=tuple(attributes))
    return EvaluationSet.from_frame(frame, roles)


def time_fairlearn(n: int, n_boot: int) -> float:
    from fairlearn.metrics import MetricFrame
    from sklearn.metrics import precision_score, recall_score, roc_auc_score

    sex, race, y, score = anchor_data(n)
    pred = score >= 0.5

    def spec(t, p):
        return recall_score(t, p, pos_label=0)

    sf = pd.DataFrame({"sex": sex, "race": race})
    t0 = time.perf_counter()
    MetricFrame(metrics={"auroc": roc_auc_score}, y_true=y, y_pred=score, sensitive_features=sf,
                n_boot=n_boot, ci_quantiles=[0.025, 0.975], random_state=0)
    MetricFrame(metrics={"sens": recall_score, "spec": spec, "ppv": precision_score},
                y_true=y, y_pred=pred, sensitive_features=sf, n_boot=n_boot,
                ci_quantiles=[0.025, 0.975], random_state=0)
    return time.perf_counter() - t0


def time_numpy_bound(n: int, B: int) -> float:
    """limit_bootstrap.py's code, inlined unchanged (per-row Poisson weights, 8 groups)."""
    rng = np.random.default_rng(0)
    g = rng.integers(0, 8, n)
    y = rng.random(n) < 0.2
    score = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.5 * y - 1)))
    t0 = time.perf_counter()
    out = []
    for k in range(8):
        m = g == k
        s, t = score[m], y[m]
        order = np.argsort(-s, kind="stable")
        s, t = s[order], t[order]
        pred = s >= 0.5
        chunk = max(1, int(2e7 // len(s)))
        res = []
        for b0 in range(0, B, chunk):
            w = rng.poisson(1.0, size=(min(chunk, B - b0), len(s))).astype(np.float32)
            wp = w * t
            wn = w * ~t
            cp = np.cumsum(wp, axis=1)
            P = cp[:, -1]
            N = wn.sum(1)
            auc = (wn * (cp - wp / 2)).sum(1) / (P * N)
            tp = (wp * pred).sum(1)
            fp = (wn * pred).sum(1)
            res.append(np.stack([auc, tp / P, 1 - fp / N, tp / (tp + fp)], 1))
        r = np.concatenate(res)
        out.append(np.percentile(r, [2.5, 97.5], axis=0))
    return time.perf_counter() - t0


def time_rwe_bootstrap(n: int, n_boot: int, patients: int = 0) -> tuple[float, object]:
    from rwe.data import ColumnRoles, EvaluationSet
    from rwe.subgroups import subgroup_performance

    sex, race, y, score = anchor_data(n)
    frame = pd.DataFrame({"sex": sex, "race": race, "y": y, "score": score})
    if patients:
        frame["pid"] = np.random.default_rng(1).integers(0, patients, n)
        ev = EvaluationSet.from_frame(frame, ColumnRoles(
            patient_id="pid", scores={"v1": "score"}, label="y", attributes=("sex", "race")))
    else:
        ev = make_evset(frame, ["sex", "race"])
    t0 = time.perf_counter()
    rep = subgroup_performance(ev, metrics=("auroc", "sensitivity", "specificity", "ppv"),
                               by=(("sex", "race"),), ci_method="bootstrap", n_boot=n_boot,
                               random_state=0, heterogeneity=False, fairness=False)
    return time.perf_counter() - t0, rep


def bench_bootstrap(a) -> None:
    print("== (a) bootstrap: 8 cells (sex x race), AUROC+sens+spec+PPV, percentile CIs")
    tf = time_fairlearn(a.fairlearn_n, a.fairlearn_boot)
    tf_scaled = tf * (a.n / a.fairlearn_n) * (a.n_boot / a.fairlearn_boot)
    print(f"fairlearn MetricFrame n={a.fairlearn_n} n_boot={a.fairlearn_boot}: {tf:.2f} s "
          f"-> scaled linearly to n={a.n} n_boot={a.n_boot}: {tf_scaled:.0f} s")
    tn = time_numpy_bound(a.numpy_n, a.numpy_boot)
    tn_scaled = tn * (a.n / a.numpy_n) * (a.n_boot / a.numpy_boot)
    print(f"numpy per-row Poisson bound n={a.numpy_n} B={a.numpy_boot}: {tn:.2f} s "
          f"-> scaled linearly to n={a.n} B={a.n_boot}: {tn_scaled:.1f} s")
    tr, rep = time_rwe_bootstrap(a.n, a.n_boot)
    print(f"rwe subgroup_performance(ci_method='bootstrap') n={a.n} n_boot={a.n_boot}: "
          f"{tr:.2f} s (measured, not scaled; n_bins={rep.settings['n_bins']}, "
          f"max binned-AUROC error bound {rep.settings['auroc_binned_error_bound_max']:.2e})")
    print(f"RATIO fairlearn/rwe = {tf_scaled / tr:,.0f}x (target >= 1000x)")
    print(f"RATIO numpy-bound/rwe = {tn_scaled / tr:.1f}x (target >= 1x)")
    if a.cluster_patients:
        tc, rep = time_rwe_bootstrap(a.n, a.n_boot, a.cluster_patients)
        print(f"rwe cluster bootstrap ({a.cluster_patients} patients, "
              f"{rep.settings['bootstrap']}) n={a.n} n_boot={a.n_boot}: {tc:.2f} s")


def analytic_data(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sex = pd.Categorical.from_codes(rng.integers(0, 2, n).astype(np.int8), ["F", "M"])
    race = pd.Categorical.from_codes(
        rng.choice(5, n, p=[.55, .13, .07, .15, .10]).astype(np.int8),
        ["White", "Black", "Asian", "Hispanic", "Other"])
    site = pd.Categorical.from_codes(rng.integers(0, 2, n).astype(np.int8), ["A", "B"])
    y = rng.random(n) < 0.2
    score = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.5 * y - 1)))
    return pd.DataFrame({"sex": sex, "race": race, "site": site, "y": y, "score": score})


def bench_analytic(a) -> None:
    from sklearn.metrics import roc_auc_score

    from rwe.subgroups import subgroup_performance

    print(f"== (b) analytic: n={a.n}, 20 intersectional cells (sex x race x site), "
          "sens/spec/ppv/npv/fpr/fnr/accuracy (Wilson) + AUROC (DeLong)")
    df = analytic_data(a.n)
    ev = make_evset(df, ["sex", "race", "site"])
    y = ev.y_true
    s = ev.score()
    input_bytes = s.nbytes + y.nbytes + sum(len(ev.frame) * ev.frame[c].cat.codes.dtype.itemsize
                                            for c in ("sex", "race", "site"))
    t0 = time.perf_counter()
    auc = roc_auc_score(y, s)
    t_sk = time.perf_counter() - t0
    print(f"sklearn roc_auc_score on all {a.n} rows: {t_sk:.2f} s (auc={auc:.4f})")
    kw = ANALYTIC_KW
    gc.collect()
    t0 = time.perf_counter()
    rep = subgroup_performance(ev, **kw)
    t_rwe = time.perf_counter() - t0
    ncell = rep.table.query("group != 'overall'")["level"].nunique()
    print(f"rwe subgroup_performance (analytic, {ncell} cells + overall): {t_rwe:.2f} s")
    print(f"RATIO rwe/roc_auc_score = {t_rwe / t_sk:.2f} (target <= 1)")
    ov = rep.table.query("group == 'overall' and metric == 'auroc'")["estimate"].iloc[0]
    print(f"check: overall AUROC rwe {ov:.12f} vs sklearn {auc:.12f}")
    gc.collect()
    tracemalloc.start()
    subgroup_performance(ev, **kw)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"input columns: {input_bytes / 1e6:.0f} MB (score float64, label bool, 3 x int8 "
          f"category codes); peak traced memory of the rwe call: {peak / 1e6:.0f} MB")
    print(f"RATIO peak/input = {peak / input_bytes:.2f} (target <= 2)")


ANALYTIC_KW = dict(metrics=("sensitivity", "specificity", "ppv", "npv", "fpr", "fnr", "accuracy",
                            "auroc"), by=(("sex", "race", "site"),), heterogeneity=True,
                   fairness=False)


def bench_partitions(a) -> None:
    from rwe.stats.summaries import SummarySpec, merge_summaries, summarize
    from rwe.subgroups import subgroup_performance

    attrs = ["sex", "race", "site"]
    print(f"== (p) partitions: n={a.n} in {a.parts} partitions, 20 cells, the analytic metrics; "
          "summarize each + merge + finalize vs one summarize + finalize")
    df = analytic_data(a.n)
    ev = make_evset(df, attrs)
    cuts = np.linspace(0, a.n, a.parts + 1).astype(int)
    parts = [make_evset(df.iloc[lo:hi].reset_index(drop=True), attrs)
             for lo, hi in zip(cuts[:-1], cuts[1:], strict=True)]
    del df

    def single(resolution):
        gc.collect()
        t0 = time.perf_counter()
        s = summarize(ev, SummarySpec(resolution=resolution, thresholds=(0.5,)),
                      attributes=attrs, features=())
        t1 = time.perf_counter()
        rep = subgroup_performance(s, **ANALYTIC_KW)
        t2 = time.perf_counter()
        return rep, t1 - t0, t2 - t1

    def partitioned(resolution):
        gc.collect()
        t0 = time.perf_counter()
        sums = [summarize(p, SummarySpec(resolution=resolution, thresholds=(0.5,),
                                         source=f"partition {i}"), attributes=attrs,
                          features=())
                for i, p in enumerate(parts)]
        t1 = time.perf_counter()
        merged = merge_summaries(sums)
        t2 = time.perf_counter()
        rep = subgroup_performance(merged, **ANALYTIC_KW)
        t3 = time.perf_counter()
        return rep, t1 - t0, t2 - t1, t3 - t2

    ref, ts, tf = single("full")
    print(f"single, full resolution: summarize {ts:.2f} s + finalize {tf:.2f} s = "
          f"{ts + tf:.2f} s")
    rep, ps, pm, pf = partitioned("full")
    tot = ps + pm + pf
    diff = np.nanmax(np.abs(rep.table[["estimate", "ci_low", "ci_high"]].to_numpy(float)
                            - ref.table[["estimate", "ci_low", "ci_high"]].to_numpy(float)))
    print(f"{a.parts} partitions, full resolution: summarize {ps:.2f} s + merge {pm:.2f} s + "
          f"finalize {pf:.2f} s = {tot:.2f} s (max abs diff of the table vs single: "
          f"{diff:.1e})")
    print(f"RATIO partitions/single (full resolution) = {tot / (ts + tf):.2f} (target <= 1.2)")
    rep, ps, pm, pf = partitioned(a.bins)
    tot = ps + pm + pf
    b = rep.table.query("metric == 'auroc'")["binning_bound"].max()
    print(f"{a.parts} partitions, {a.bins} bins: summarize {ps:.2f} s + merge {pm:.3f} s + "
          f"finalize {pf:.2f} s = {tot:.2f} s (largest AUROC binning bound {b:.1e})")
    print(f"RATIO partitions at {a.bins} bins / single full = {tot / (ts + tf):.2f}")


def bench_demo(a) -> None:
    from pathlib import Path

    from rwe.protocol import load_protocol
    from rwe.stats.summaries import summarize
    from rwe.subgroups import subgroup_performance_from_protocol

    print(f"== (c) demo protocol: subgroup_performance_from_protocol({a.protocol})")
    p = load_protocol(a.protocol)
    data = Path(a.protocol).resolve().parent / p.data.path  # relative to the protocol file
    if not data.exists():
        print(f"missing {data}: run .venv/bin/python datasets/demo/generate.py")
        return
    ev = p.load_data()
    for run in ("first call (with lazy imports)", "second call"):
        t0, c0 = time.perf_counter(), time.process_time()
        rep = subgroup_performance_from_protocol(p, ev)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"rwe {run}: {wall:.2f} s wall, {cpu:.2f} s CPU (target < 6 s)")
    st = rep.settings
    by = [(g,) if isinstance(g, str) else tuple(g)
          for g in [*p.subgroups.attributes, *p.subgroups.intersections]]
    attrs = list(dict.fromkeys(x for g in by for x in g))
    summ = summarize(ev, attributes=attrs, features=())
    levels = sum(len(summ.grouping(g).levels) for g in by) + 1
    print(f"rows {st['n']}, groupings {len(st['groupings'])}, levels "
          f"{levels}, joint cells {summ.cells.n_cells}; "
          f"bootstrap {st.get('bootstrap')}: {st.get('bootstrap_resampled_levels')} resampled "
          f"levels x 2 x {st.get('bootstrap_bins')} bins ({st.get('bootstrap_resolution')})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("which", choices=["bootstrap", "analytic", "partitions", "demo", "all"])
    p.add_argument("--n", type=int, default=None)
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--fairlearn-n", type=int, default=20_000)
    p.add_argument("--fairlearn-boot", type=int, default=20)
    p.add_argument("--numpy-n", type=int, default=1_000_000)
    p.add_argument("--numpy-boot", type=int, default=200)
    p.add_argument("--cluster-patients", type=int, default=0,
                   help="also time the patient-level cluster bootstrap with this many patients")
    p.add_argument("--protocol", default="protocols/demo.yaml")
    p.add_argument("--parts", type=int, default=10, help="partitions (partitions mode)")
    p.add_argument("--bins", type=int, default=2048,
                   help="declared resolution of the partition summaries (partitions mode)")
    a = p.parse_args()
    if a.which in ("bootstrap", "all"):
        b = argparse.Namespace(**vars(a))
        b.n = a.n or 1_000_000
        bench_bootstrap(b)
    if a.which in ("analytic", "all"):
        b = argparse.Namespace(**vars(a))
        b.n = a.n or 10_000_000
        bench_analytic(b)
    if a.which in ("partitions", "all"):
        b = argparse.Namespace(**vars(a))
        b.n = a.n or 10_000_000
        bench_partitions(b)
    if a.which in ("demo", "all"):
        bench_demo(a)


if __name__ == "__main__":
    main()
