"""Benchmark rwe beyond one machine: dask partitions, and merging site summaries (issue 20).

usage:
  python benchmarks/bench_scale.py rows [--rows 10000000 30000000 100000000]
        [--partition-rows 2000000] [--bins 1024] [--dir /tmp/rwe-bench-scale]
  python benchmarks/bench_scale.py throughput [--rows 10000000] [--partition-rows 2000000]
        [--bins 1024] [--dir /tmp/rwe-bench-scale]
  python benchmarks/bench_scale.py merge [--sites 100] [--bins 200]

rows: synthetic rows as parquet partitions (score, label, sex, race5, age_band4, site8;
    the text columns dictionary-encoded, so dask reads them as categoricals whose categories
    are unknown per partition). The subgroup table (sensitivity, specificity, PPV, NPV,
    AUROC with Wilson and DeLong intervals; overall, 4 attributes) of a
    rwe.data.DaskEvaluationSet at --bins uniform bins on a dask.distributed LocalCluster with
    2 worker processes x 1 thread. Reported: wall time, rows per second per core, and peak
    memory: the largest resident set of each worker process (ru_maxrss, a fresh cluster per
    size) and of this process, and the largest sum of all of them (sampled every 0.1 s).
    Target: peak < 2 GB, flat in the row count.
throughput: the same table on the first --rows rows, three ways, each in a fresh process:
    Each path first runs once on the last (smallest) file, untimed: imports in the client
    and the workers. (1) in memory on one core: pandas.read_parquet of the partitions, EvaluationSet.from_frame,
    subgroup_performance at the same resolution; (2) the dask path on 2 workers (1 thread
    each); (3) the numpy bound: the arrays already in memory, one bin index and one
    np.bincount over (cell, bin, label), i.e. the least any binned summary must do. Rows per
    second per core of wall time (2 cores for dask) and rows per CPU second (all processes:
    workers and client), the latter fair on a shared machine. Target: dask rows/s per core
    >= in-memory rows/s per core / 1.5.
merge: --sites site summaries of the demo rows (100k rows cut into --sites sites, the
    protocol's summary spec at --bins bins: 6 attributes, 2 versions, 3 features), written
    as summary files; timed: merge_summaries of the 100 summaries (the spine), and reading +
    checking the 100 files (Summary.load verifies each checksum) then merging. Target < 1 s.

Never a test: timings depend on the machine. Compare the ratios printed in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SEXES = ["F", "M"]
RACES = ["Asian", "Black", "Other", "White", "Hispanic"]
AGES = ["40-49", "50-64", "65-79", "80+"]
SITES = [f"S{i}" for i in range(8)]
ROLES = {"scores": {"1.0": "score"}, "label": "y", "site": "site",
         "attributes": ["sex", "race", "age_band"]}
BY = ["sex", "race", "age_band", "site"]
METRICS = ("sensitivity", "specificity", "ppv", "npv", "auroc")
THRESHOLD = 0.5


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _part(i: int, n: int):
    """One partition of synthetic rows (seeded by its number)."""
    import pyarrow as pa

    rng = np.random.default_rng(1000 + i)
    sex = rng.integers(0, 2, n).astype(np.int8)
    race = rng.choice(5, n, p=[0.06, 0.13, 0.05, 0.6, 0.16]).astype(np.int8)
    age = rng.choice(4, n, p=[0.2, 0.4, 0.3, 0.1]).astype(np.int8)
    site = rng.integers(0, 8, n).astype(np.int8)
    lp = -2.0 + 0.3 * sex + 0.1 * race + 0.4 * age + rng.normal(0, 1, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-lp))).astype(np.int8)
    score = 1 / (1 + np.exp(-(lp + rng.normal(0, 1.2, n))))

    def dict_col(codes, labels):
        return pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(labels))

    return pa.table({"score": score, "y": y, "sex": dict_col(sex, SEXES),
                     "race": dict_col(race, RACES), "age_band": dict_col(age, AGES),
                     "site": dict_col(site, SITES)})


def make_rows(d: Path, rows: int, partition_rows: int) -> list[Path]:
    """The partitions of the first ``rows`` rows (written once, reused by later runs)."""
    import pyarrow.parquet as pq

    d.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(-(-rows // partition_rows)):
        n = min(partition_rows, rows - i * partition_rows)
        f = d / f"part-{i:04d}-{n}.parquet"
        if not f.exists():
            tmp = f.with_suffix(".tmp")
            pq.write_table(_part(i, n), tmp)
            tmp.replace(f)
        files.append(f)
    return files


def _cluster():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=":0", memory_limit="6GiB")
    return cluster, Client(cluster)


def _worker_maxrss_mb(client) -> list[float]:
    def rss():
        import resource as r

        return r.getrusage(r.RUSAGE_SELF).ru_maxrss / 1024

    return sorted(client.run(rss).values())


class _TotalRSS:
    """The largest sum of the resident sets of this process and all its children (the
    scheduler's nannies and workers), sampled every 0.1 s in a thread."""

    def __init__(self):
        import threading

        import psutil

        self.peak = 0
        self._stop = threading.Event()
        self._me = psutil.Process()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import psutil

        while not self._stop.is_set():
            total = 0
            for p in [self._me, *self._me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(0.1)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _cpu_s(client=None) -> float:
    """CPU seconds (user + system) of this process, or of the client's workers."""
    if client is None:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    def cpu():
        import resource as rr

        x = rr.getrusage(rr.RUSAGE_SELF)
        return x.ru_utime + x.ru_stime

    return float(sum(client.run(cpu).values()))


def run_dask(files: list[Path], bins: int) -> dict:
    import dask.dataframe as dd

    from rwe.data import from_dask
    from rwe.subgroups import subgroup_performance

    cluster, client = _cluster()
    sampler = _TotalRSS().__enter__()
    try:
        # warm-up (imports in the client and the workers) on a small file, not timed
        small = from_dask(dd.read_parquet(str(files[-1])), ROLES, resolution=bins)
        subgroup_performance(small, metrics=METRICS, by=BY, threshold=THRESHOLD)
        c0, w0 = _cpu_s(), _cpu_s(client)
        t0 = time.perf_counter()
        ddf = dd.read_parquet([str(f) for f in files])
        dev = from_dask(ddf, ROLES, resolution=bins)
        res = subgroup_performance(dev, metrics=METRICS, by=BY, threshold=THRESHOLD)
        wall = time.perf_counter() - t0
        cpu = _cpu_s() - c0 + _cpu_s(client) - w0
        workers = _worker_maxrss_mb(client)
    finally:
        sampler.__exit__()
        client.close()
        cluster.close()
    n = int(res.table["n"].iloc[0])
    return {"path": "dask", "rows": n, "wall_s": wall, "rows_per_s_per_core": n / wall / 2,
            "cpu_s": cpu, "rows_per_cpu_s": n / cpu,
            "worker_peak_mb": workers, "client_peak_mb": _maxrss_mb(),
            "total_peak_mb": sampler.peak / 2**20,
            "auroc": float(res.table.query("metric == 'auroc' and group == 'overall'")
                           ["estimate"].iloc[0]),
            "bound": float(res.table["binning_bound"].max())}


def run_memory(files: list[Path], bins: int) -> dict:
    import pandas as pd

    from rwe.data import EvaluationSet
    from rwe.stats.summaries import summarize
    from rwe.subgroups import subgroup_performance

    # warm-up (imports) on a small file, not timed
    small = summarize(EvaluationSet.from_frame(pd.read_parquet(files[-1]), ROLES), attributes=BY,
                      resolution=bins, thresholds=[THRESHOLD], features=[])
    subgroup_performance(small, metrics=METRICS, by=BY, threshold=THRESHOLD)
    c0 = _cpu_s()
    t0 = time.perf_counter()
    df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    ev = EvaluationSet.from_frame(df, ROLES)
    del df
    s = summarize(ev, attributes=BY, resolution=bins, thresholds=[THRESHOLD], features=[])
    res = subgroup_performance(s, metrics=METRICS, by=BY, threshold=THRESHOLD)
    wall = time.perf_counter() - t0
    cpu = _cpu_s() - c0
    n = int(res.table["n"].iloc[0])
    return {"path": "memory", "rows": n, "wall_s": wall, "rows_per_s_per_core": n / wall,
            "cpu_s": cpu, "rows_per_cpu_s": n / cpu,
            "peak_mb": _maxrss_mb(),
            "auroc": float(res.table.query("metric == 'auroc' and group == 'overall'")
                           ["estimate"].iloc[0])}


def run_numpy(files: list[Path], bins: int) -> dict:
    """The least a binned summary must do, on arrays already in memory."""
    import pyarrow.parquet as pq

    cols = {k: [] for k in ("score", "y", "sex", "race", "age_band", "site")}
    for f in files:
        t = pq.read_table(f)
        for k in cols:
            c = t.column(k).combine_chunks()
            cols[k].append(np.asarray(c.indices if hasattr(c, "indices") else c))
    a = {k: np.concatenate(v) for k, v in cols.items()}
    c0 = _cpu_s()
    t0 = time.perf_counter()
    cell = (a["sex"].astype(np.int32) + 2 * (a["race"] + 5 * (a["age_band"].astype(np.int32)
                                                              + 4 * a["site"])))
    b = np.minimum((a["score"] * bins).astype(np.int32), bins - 1)
    key = (cell.astype(np.int64) * bins + b) * 2 + a["y"]
    counts = np.bincount(key, minlength=320 * bins * 2)
    wall = time.perf_counter() - t0
    cpu = _cpu_s() - c0
    n = int(counts.sum())
    return {"path": "numpy", "rows": n, "wall_s": wall, "rows_per_s_per_core": n / wall,
            "cpu_s": cpu, "rows_per_cpu_s": n / cpu,
            "peak_mb": _maxrss_mb()}


def _in_process(kind: str, files: list[Path], bins: int) -> dict:
    """Run one path in a fresh interpreter (its own peak memory)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, __file__, "_one", kind, str(bins),
                          *map(str, files)], capture_output=True, text=True, env=env,
                         check=False)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def cmd_rows(args) -> None:
    print(f"load average {os.getloadavg()}")
    for rows in args.rows:
        files = make_rows(Path(args.dir), rows, args.partition_rows)
        r = _in_process("dask", files, args.bins)
        print(f"{rows:>12,} rows ({len(files)} partitions): {r['wall_s']:.1f} s, "
              f"{r['rows_per_s_per_core'] / 1e6:.2f} M rows/s/core; peak worker "
              f"{max(r['worker_peak_mb']):.0f} MB (both {r['worker_peak_mb']}), client "
              f"{r['client_peak_mb']:.0f} MB, all processes together {r['total_peak_mb']:.0f} MB"
              f" (sampled); AUROC {r['auroc']:.4f}, largest binning bound "
              f"{r['bound']:.1e}")
    print(f"load average {os.getloadavg()}")


def cmd_throughput(args) -> None:
    print(f"load average {os.getloadavg()}")
    files = make_rows(Path(args.dir), args.rows, args.partition_rows)
    res = {k: _in_process(k, files, args.bins) for k in ("memory", "dask", "numpy")}
    for k, r in res.items():
        extra = (f"peak {r['peak_mb']:.0f} MB" if "peak_mb" in r else
                 f"peak workers {r['worker_peak_mb']} MB, client {r['client_peak_mb']:.0f} MB, "
                 f"together {r['total_peak_mb']:.0f} MB")
        print(f"{k:>7}: {r['wall_s']:.2f} s wall, {r['cpu_s']:.2f} CPU s; "
              f"{r['rows_per_s_per_core'] / 1e6:.2f} M rows/s/core of wall time, "
              f"{r['rows_per_cpu_s'] / 1e6:.2f} M rows per CPU s; {extra}")
    m, d, npb = (res[k]["rows_per_s_per_core"] for k in ("memory", "dask", "numpy"))
    mc, dc, nc = (res[k]["rows_per_cpu_s"] for k in ("memory", "dask", "numpy"))
    print(f"in-memory / dask per core: {m / d:.2f} of wall time, {mc / dc:.2f} per CPU second "
          f"(target <= 1.5); numpy bound / dask: {npb / d:.1f} per core, {nc / dc:.1f} per CPU "
          f"second; AUROC equal: {res['memory']['auroc'] == res['dask']['auroc']} "
          f"({res['memory']['auroc']!r} vs {res['dask']['auroc']!r})")
    print(f"load average {os.getloadavg()}")


def cmd_merge(args) -> None:
    import tempfile

    from rwe.protocol import load_protocol
    from rwe.stats.summaries import Summary, merge_summaries, summarize

    p = load_protocol(ROOT / "protocols" / "demo.yaml")
    ev = p.load_data()
    site = np.arange(len(ev)) % args.sites
    spec = p.summary_spec(resolution=args.bins)
    parts = []
    for i in range(args.sites):
        from dataclasses import replace

        s = summarize(ev.subset(site == i), replace(spec, source=f"site{i:03d}"))
        parts.append(s)
    t0 = time.perf_counter()
    merged = merge_summaries(parts)
    t_merge = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as d:
        paths = [s.save(Path(d) / f"site{i:03d}.json") for i, s in enumerate(parts)]
        size = sum(f.stat().st_size for f in paths)
        t0 = time.perf_counter()
        loaded = [Summary.load(f) for f in paths]
        t_load = time.perf_counter() - t0
        t0 = time.perf_counter()
        merge_summaries(loaded)
        t_merge2 = time.perf_counter() - t0
    cells = int(np.mean([s.cells.n_cells for s in parts]))
    print(f"{args.sites} site summaries ({cells} cells each on average, {args.bins} bins, "
          f"{size / args.sites / 1e3:.0f} kB each as JSON): merge_summaries {t_merge:.3f} s; "
          f"from files: read + check {t_load:.3f} s, merge {t_merge2:.3f} s, total "
          f"{t_load + t_merge2:.3f} s; merged {merged.n_rows:,} rows, {merged.cells.n_cells} "
          f"cells")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("rows")
    r.add_argument("--rows", type=int, nargs="+", default=[10_000_000, 30_000_000, 100_000_000])
    t = sub.add_parser("throughput")
    t.add_argument("--rows", type=int, default=10_000_000)
    for x in (r, t):
        x.add_argument("--partition-rows", type=int, default=2_000_000)
        x.add_argument("--bins", type=int, default=1024)
        x.add_argument("--dir", default="/tmp/rwe-bench-scale")
    m = sub.add_parser("merge")
    m.add_argument("--sites", type=int, default=100)
    m.add_argument("--bins", type=int, default=200)
    one = sub.add_parser("_one")
    one.add_argument("kind")
    one.add_argument("bins", type=int)
    one.add_argument("files", nargs="+")
    args = ap.parse_args(argv)
    if args.cmd == "_one":
        fn = {"dask": run_dask, "memory": run_memory, "numpy": run_numpy}[args.kind]
        print(json.dumps(fn([Path(f) for f in args.files], args.bins)))
        return
    {"rows": cmd_rows, "throughput": cmd_throughput, "merge": cmd_merge}[args.cmd](args)


if __name__ == "__main__":
    main()
