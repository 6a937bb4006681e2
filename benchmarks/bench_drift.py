"""Benchmark rwe's drift analysis against Evidently, and the incremental ``rwe monitor`` step.

usage:
  python benchmarks/bench_drift.py evidently [--n 1000000] [--venv DIR] [--skip-evidently]
  python benchmarks/bench_drift.py monitor [--n-month 100000] [--months 12]
  python benchmarks/bench_drift.py all

(a) evidently: reference N rows vs current N rows, 20 columns (12 numeric + 8 categorical),
    the current mildly shifted: exactly the data of /work/shared/bench/bench_evidently.py
    (same generator, same seeds). Evidently's DataDriftPreset report runs on the two frames
    without windows (its only mode); rwe.assess_drift runs the same 20 columns with PSI, KS,
    normalised Wasserstein, chi-square and Jensen-Shannon per window x site: 12 calendar
    months x (overall + 4 sites), plus the score. Evidently needs pandas < 3, so it runs in a
    separate virtual environment that this script creates with pip when it is missing
    (``--venv``, default ~/.cache/rwe-bench/evidently-venv), with DO_NOT_TRACK=1 (Evidently
    otherwise sends usage telemetry). Target: rwe >= 10x faster than the Evidently report.
(b) monitor: a state initialized on ``--months`` months of history, then one new month of
    ``--n-month`` rows through ``rwe.drift.monitor`` (in process, imports warm) and through the
    ``rwe monitor`` command (a fresh process: imports included). The protocol monitors the 20
    columns with the five tests by site, and charts calibration-in-the-large per site (CUSUM,
    in-control ARL 370 months). Target: < 2 s for the step; also timed with the classifier
    two-sample test added to the tests.

Never a test: timings depend on the machine. Compare the ratios printed in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

NUM = [f"num_{i}" for i in range(12)]
CAT = [f"cat_{i}" for i in range(8)]
EVIDENTLY_SCRIPT = Path("/work/shared/bench/bench_evidently.py")
DEFAULT_VENV = Path.home() / ".cache" / "rwe-bench" / "evidently-venv"


def make(n: int, shift: float, seed: int) -> pd.DataFrame:
    """The generator of bench_evidently.py, unchanged (same columns, same draws)."""
    rng = np.random.default_rng(seed)
    d = {c: rng.normal(loc=shift * (i % 3 == 0), scale=1 + 0.1 * i, size=n)
         for i, c in enumerate(NUM)}
    for i, c in enumerate(CAT):
        k = 3 + i  # 3..10 levels
        p = np.ones(k) / k
        if shift and i % 2 == 0:
            p = p * np.linspace(0.7, 1.3, k)
            p /= p.sum()
        d[c] = rng.choice(np.array([f"L{j}" for j in range(k)]), size=n, p=p)
    return pd.DataFrame(d)


def with_roles(frame: pd.DataFrame, seed: int, months: int = 12,
               start: str = "2025-01-01") -> pd.DataFrame:
    """The frame plus what an evaluation set needs: a timestamp spread over ``months``
    calendar months, a site (4), a calibrated score and its outcome."""
    rng = np.random.default_rng(seed + 100)
    n = len(frame)
    m0 = np.datetime64(start[:7], "M")
    month = m0 + rng.integers(0, months, n).astype("timedelta64[M]")
    ts = month.astype("datetime64[m]") + rng.integers(0, 27 * 1440, n).astype("timedelta64[m]")
    lin = 0.4 * frame["num_0"].to_numpy() - 1.5 + rng.normal(0, 1, n)
    p = 1 / (1 + np.exp(-lin))
    return frame.assign(ts=ts.astype("datetime64[ns]"),
                        site=np.array(["S1", "S2", "S3", "S4"])[rng.integers(0, 4, n)],
                        score=p, y=(rng.random(n) < p).astype(np.int64))


def roles():
    from rwe.data import ColumnRoles

    return ColumnRoles(scores={"v1": "score"}, label="y", timestamp="ts", site="site",
                       features=tuple(NUM + CAT))


# ------------------------------------------------------------------------------- (a)
def ensure_venv(venv: Path) -> Path:
    py = venv / "bin" / "python"
    if py.exists():
        return py
    print(f"creating {venv} and installing evidently==0.7.23 with pandas<3 (pip) ...",
          flush=True)
    env = dict(os.environ, DO_NOT_TRACK="1")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", "evidently==0.7.23", "pandas<3"],
                   check=True, env=env)
    return py


def time_evidently(n: int, venv: Path) -> dict:
    py = ensure_venv(venv)
    env = dict(os.environ, DO_NOT_TRACK="1")
    out = subprocess.run([str(py), str(EVIDENTLY_SCRIPT), str(n)], capture_output=True,
                         text=True, env=env, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def time_rwe(n: int) -> dict:
    import rwe
    from rwe.data import EvaluationSet

    t0 = time.perf_counter()
    ref = with_roles(make(n, 0.0, 1), 1)
    cur = with_roles(make(n, 0.1, 2), 2)
    t_gen = time.perf_counter() - t0
    # warm-up on 2,000 rows (imports of scipy.stats and statsmodels, as Evidently's script
    # imports its stack before its timer starts)
    small = EvaluationSet.from_frame(cur.iloc[:2000], roles())
    rwe.assess_drift(small, reference=ref.iloc[:2000], window="month", by=["site"],
                     tests=["psi", "ks", "wasserstein", "chi2", "js"], metrics=(), version="v1")
    t0 = time.perf_counter()
    ev = EvaluationSet.from_frame(cur, roles())
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = rwe.assess_drift(ev, reference=ref, window="month", by=["site"],
                           tests=["psi", "ks", "wasserstein", "chi2", "js"], metrics=(),
                           version="v1")
    t_run = time.perf_counter() - t0
    d = res.drift
    return {"n": n, "data_gen_s": round(t_gen, 2), "evaluation_set_s": round(t_load, 2),
            "assess_drift_s": round(t_run, 2), "windows": len(res.windows),
            "levels_per_window": int(d[d["window"] == res.windows[0]][["group", "level"]]
                                     .drop_duplicates().shape[0]),
            "test_rows": len(d), "max_ks_bound": float(d.loc[d["test"] == "ks", "bound"].max()),
            "max_wasserstein_bound": float(d.loc[d["test"] == "wasserstein", "bound"].max())}


def bench_evidently(args) -> None:
    r = time_rwe(args.n)
    print("rwe", json.dumps(r), flush=True)
    if args.skip_evidently:
        return
    e = time_evidently(args.n, Path(args.venv))
    print("evidently", json.dumps(e), flush=True)
    ev_total = e["dataset_build_s"] + e["report_run_s"]
    print(f"ratio Evidently (Dataset + report.run, no windows) / rwe (assess_drift, "
          f"{r['windows']} windows x {r['levels_per_window']} levels) = "
          f"{ev_total / r['assess_drift_s']:.1f}x; including rwe's EvaluationSet: "
          f"{ev_total / (r['assess_drift_s'] + r['evaluation_set_s']):.1f}x")


# ------------------------------------------------------------------------------- (b)
PROTOCOL = """\
name: bench-monitor
device: {{name: bench, version: "1", intended_use: benchmark, intended_use_population: all}}
data:
  path: {history}
  reference_rows: {reference}
  columns:
    scores: {{v1: score}}
    label: y
    timestamp: ts
    site: site
    features: [{features}]
performance: {{metrics: [auroc], threshold: 0.3}}
drift:
  reference: reference_rows
  window: month
  features: [{features}]
  tests: [{tests}]
  by: [site]
  metrics: [calibration_intercept, oe_ratio]
  alerts:
    - {{metric: calibration_intercept, method: cusum, arl0: 370, params: {{k: 0.5}}, by: [site]}}
report: {{title: bench}}
"""


def bench_monitor(args) -> None:
    from rwe.drift import monitor
    from rwe.protocol import load_protocol

    n_month, months = args.n_month, args.months
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        hist = with_roles(make(n_month * months // 4, 0.0, 3), 3, months=months,
                          start="2024-01-01")
        ref = with_roles(make(200_000, 0.0, 1), 1)
        new = with_roles(make(n_month, 0.1, 4), 4, months=1,
                         start=f"{2024 + months // 12}-{months % 12 + 1:02d}-01")
        hist.to_parquet(d / "history.parquet", index=False)
        ref.to_parquet(d / "reference.parquet", index=False)
        new.to_parquet(d / "new.parquet", index=False)
        rows = []
        for label, tests in (("5 tests", "psi, ks, wasserstein, chi2, js"),
                             ("5 tests + classifier", "psi, ks, wasserstein, chi2, js, "
                                                      "classifier")):
            p = d / f"p{len(rows)}.yaml"
            p.write_text(PROTOCOL.format(history=d / "history.parquet",
                                         reference=d / "reference.parquet",
                                         features=", ".join(NUM + CAT), tests=tests))
            proto = load_protocol(p)
            state = d / f"state{len(rows)}.json"
            t0 = time.perf_counter()
            monitor(proto, d / "history.parquet", state)
            t_init = time.perf_counter() - t0
            snap = state.read_bytes()
            t0 = time.perf_counter()
            run = monitor(proto, d / "new.parquet", state)
            t_step = time.perf_counter() - t0
            state.write_bytes(snap)
            (d / f"state{len(rows)}.json.alarms.jsonl").write_text(
                "" if not Path(str(state) + ".alarms.jsonl").exists() else
                Path(str(state) + ".alarms.jsonl").read_text())
            t0 = time.perf_counter()
            cmd = subprocess.run([sys.executable, "-m", "rwe.cli", "monitor", str(p), "--data",
                                  str(d / "new.parquet"), "--state", str(state)],
                                 capture_output=True, text=True,
                                 env=dict(os.environ, PYTHONPATH=str(Path.cwd())))
            t_cli = time.perf_counter() - t0
            rows.append({"protocol": label, "history_rows": len(hist),
                         "new_month_rows": n_month, "init_s": round(t_init, 2),
                         "step_in_process_s": round(t_step, 2),
                         "step_cli_s": round(t_cli, 2), "cli_exit": cmd.returncode,
                         "state_kb": round(state.stat().st_size / 1024),
                         "windows": list(run.windows)})
            print(json.dumps(rows[-1]), flush=True)
            if cmd.returncode not in (0, 3):
                print(cmd.stderr, file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["evidently", "monitor", "all"])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--venv", default=str(DEFAULT_VENV))
    ap.add_argument("--skip-evidently", action="store_true")
    ap.add_argument("--n-month", type=int, default=100_000)
    ap.add_argument("--months", type=int, default=12)
    args = ap.parse_args()
    if args.what in ("evidently", "all"):
        bench_evidently(args)
    if args.what in ("monitor", "all"):
        bench_monitor(args)


if __name__ == "__main__":
    main()
