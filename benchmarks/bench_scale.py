"""Benchmark rwe beyond one machine: dask partitions, and merging site summaries (issue 20).

usage:
  python benchmarks/bench_scale.py rows [--rows 10000000 30000000 100000000]
        [--route files|frame] [--repeat 1] [--partition-rows 2000000] [--bins 1024]
        [--dir /tmp/rwe-bench-scale]
  python benchmarks/bench_scale.py throughput [--rows 10000000] [--repeat 1]
        [--partition-rows 2000000] [--bins 1024] [--dir /tmp/rwe-bench-scale]
  python benchmarks/bench_scale.py merge [--sites 100] [--bins 200]
  python benchmarks/bench_scale.py sites [--rows 1000000] [--dir /tmp/rwe-bench-sites]

rows: synthetic rows as parquet files of --partition-rows rows (score, label, sex, race5,
    age_band4, site8; the text columns dictionary-encoded: categoricals, whose categories
    dask does not know per partition). The subgroup table (sensitivity, specificity, PPV,
    NPV, AUROC with Wilson and DeLong intervals; overall, 4 attributes) of a
    rwe.data.DaskEvaluationSet at --bins uniform bins on rwe's own LocalCluster
    (rwe.data.dask_cluster, what data.dask: {scheduler: local} starts) of 2 worker processes
    x 1 thread. --route files: the files themselves, one read-validate-summarize task per
    file (DaskEvaluationSet.from_source of a FileSetSource: the protocol's engine: dask);
    frame: a dask DataFrame (dd.read_parquet), one map_partitions task per partition.
    Reported: wall time, rows per second per core, and peak memory: the largest resident
    set of each worker process (ru_maxrss, a fresh cluster per size) and of this process,
    and the largest sum of all of them (sampled every 0.1 s by a separate process). Target:
    peak < 2 GB, flat in the row count.
throughput: the same table on the first --rows rows, each way in a fresh process (best of
    --repeat runs): (1) in memory on one core: pandas.read_parquet of the files,
    EvaluationSet.from_frame, summarize and subgroup_performance at the same resolution
    (warmed up on the last file first); (2) and (3) the dask routes (files, frame) on 2
    workers (warmed up on the last two files, one per worker: imports and each worker's
    first allocations); (4) the numpy bound: the arrays already in memory, one bin index
    and one np.bincount over (cell, bin, label), i.e. the least any binned summary must do.
    Rows per second per core of wall time (2 cores for dask) and rows per CPU second (all
    processes: workers and client), the latter fair on a shared machine. Target: dask
    rows/s per core >= in-memory rows/s per core / 1.5.
merge: --sites site summaries of the demo rows (100k rows cut into --sites sites, the
    protocol's summary spec at --bins bins: 6 attributes, 2 versions, 3 features), written
    as summary files; timed: merge_summaries of the 100 summaries (the spine), and reading +
    checking the 100 files (Summary.load verifies each checksum) then merging. Target < 1 s.
sites: the demo scenario generated at --rows rows into --dir (kept and reused), its protocol
    with a federation section (score_bins 200, minimum count 1, the four sites), one site
    summary file per site by `rwe summarize` (made once, kept); timed in this process, each
    step once: reading and checking the four files (load_site_summary), the checksums the
    merge's provenance records, merge_sites (reading, merging and the per-site and pooled
    analyses) and saving the merged summaries (what `rwe merge` writes into the dossier).

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
    """rwe's own local cluster (what ``data.dask: {scheduler: local}`` starts): 2 worker
    processes x 1 thread."""
    from rwe.data import dask_cluster

    ctx = dask_cluster("local", workers=2, threads_per_worker=1, memory_limit="6GiB")
    return ctx, ctx.__enter__()


def _dask_set(files: list[Path], bins: int, route: str, client):
    """The DaskEvaluationSet of the files: ``frame``, a dask DataFrame (``dd.read_parquet``);
    ``files``, the files themselves (``FileSetSource``, one task per file: the protocol's
    ``engine: dask``), through a directory of links to exactly these files."""
    if route == "frame":
        import dask.dataframe as dd

        from rwe.data import from_dask

        dev = from_dask(dd.read_parquet([str(f) for f in files]), ROLES, resolution=bins)
        dev.scheduler = client
        return dev
    import tempfile

    from rwe.data import DaskEvaluationSet, FileSetSource

    d = Path(tempfile.mkdtemp(prefix="rwe-bench-links-"))
    for f in files:
        (d / f.name).symlink_to(f)
    return DaskEvaluationSet.from_source(FileSetSource(d / "*.parquet"), ROLES,
                                         resolution=bins, scheduler=client)


def _worker_maxrss_mb(client) -> list[float]:
    def rss():
        import resource as r

        return r.getrusage(r.RUSAGE_SELF).ru_maxrss / 1024

    return sorted(client.run(rss).values())


_SAMPLER = """
import select, sys, psutil
me, peak = psutil.Process(int(sys.argv[1])), 0
while not select.select([sys.stdin], [], [], 0.1)[0]:
    total = 0
    for p in [me, *me.children(recursive=True)]:
        try:
            if p.pid != psutil.Process().pid:
                total += p.memory_info().rss
        except psutil.Error:
            pass
    peak = max(peak, total)
print(peak)
"""


class _TotalRSS:
    """The largest sum of the resident sets of this process and all its children (the
    workers rwe's cluster started), sampled every 0.1 s by a separate process (its CPU
    time is not the measured run's)."""

    def __init__(self):
        self.peak = 0
        self._proc = None

    def __enter__(self):
        self._proc = subprocess.Popen([sys.executable, "-c", _SAMPLER, str(os.getpid())],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      text=True)
        return self

    def __exit__(self, *exc):
        out, _ = self._proc.communicate("stop\n")
        self.peak = int(out.strip() or 0)


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


def run_dask(files: list[Path], bins: int, route: str = "files") -> dict:
    from rwe.subgroups import subgroup_performance

    ctx, client = _cluster()
    sampler = _TotalRSS().__enter__()
    try:
        # warm-up, not timed: imports in the client and the workers, and each worker's first
        # partition (its first allocations), on the last two files
        small = _dask_set(files[-2:], bins, route, client)
        subgroup_performance(small, metrics=METRICS, by=BY, threshold=THRESHOLD)
        c0, w0 = _cpu_s(), _cpu_s(client)
        t0 = time.perf_counter()
        dev = _dask_set(files, bins, route, client)
        res = subgroup_performance(dev, metrics=METRICS, by=BY, threshold=THRESHOLD)
        wall = time.perf_counter() - t0
        cpu = _cpu_s() - c0 + _cpu_s(client) - w0
        workers = _worker_maxrss_mb(client)
    finally:
        sampler.__exit__()
        ctx.__exit__(None, None, None)
    n = int(res.table["n"].iloc[0])
    return {"path": f"dask-{route}", "rows": n, "wall_s": wall, "rows_per_s_per_core": n / wall / 2,
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


def _best(kind: str, files: list[Path], bins: int, repeat: int) -> dict:
    """Best of ``repeat`` fresh-process runs: the run of the least wall time, with the least
    CPU time of all runs (each an honest measurement; the box is shared) and the largest
    peaks (memory does not improve by luck)."""
    runs = [_in_process(kind, files, bins) for _ in range(repeat)]
    best = dict(min(runs, key=lambda r: r["wall_s"]))
    best["cpu_s"] = min(r["cpu_s"] for r in runs)
    best["rows_per_cpu_s"] = best["rows"] / best["cpu_s"]
    best["walls"] = [round(r["wall_s"], 2) for r in runs]
    for k in ("peak_mb", "client_peak_mb", "total_peak_mb"):
        if k in best:
            best[k] = max(r[k] for r in runs)
    if "worker_peak_mb" in best:
        best["worker_peak_mb"] = max((r["worker_peak_mb"] for r in runs), key=max)
    return best


def cmd_rows(args) -> None:
    print(f"load average {os.getloadavg()}")
    for rows in args.rows:
        files = make_rows(Path(args.dir), rows, args.partition_rows)
        r = _best(f"dask-{args.route}", files, args.bins, args.repeat)
        print(f"{rows:>12,} rows ({len(files)} partitions, {r['path']}): {r['wall_s']:.1f} s "
              f"(runs {r['walls']}), {r['rows_per_s_per_core'] / 1e6:.2f} M rows/s/core; "
              f"peak worker {max(r['worker_peak_mb']):.0f} MB (both {r['worker_peak_mb']}), "
              f"client {r['client_peak_mb']:.0f} MB, all processes together "
              f"{r['total_peak_mb']:.0f} MB (sampled); AUROC {r['auroc']:.4f}, largest "
              f"binning bound {r['bound']:.1e}; load average {os.getloadavg()[0]:.1f}")
    print(f"load average {os.getloadavg()}")


def cmd_throughput(args) -> None:
    print(f"load average {os.getloadavg()}")
    files = make_rows(Path(args.dir), args.rows, args.partition_rows)
    kinds = ("memory", "dask-files", "dask-frame", "numpy")
    res = {}
    for k in kinds:
        res[k] = _best(k, files, args.bins, args.repeat)
        r = res[k]
        extra = (f"peak {r['peak_mb']:.0f} MB" if "peak_mb" in r else
                 f"peak workers {r['worker_peak_mb']} MB, client {r['client_peak_mb']:.0f} MB, "
                 f"together {r['total_peak_mb']:.0f} MB")
        print(f"{k:>10}: {r['wall_s']:.2f} s wall (runs {r['walls']}), {r['cpu_s']:.2f} CPU s; "
              f"{r['rows_per_s_per_core'] / 1e6:.2f} M rows/s/core of wall time, "
              f"{r['rows_per_cpu_s'] / 1e6:.2f} M rows per CPU s; {extra}; load average "
              f"{os.getloadavg()[0]:.1f}")
    m, npb = (res[k]["rows_per_s_per_core"] for k in ("memory", "numpy"))
    mc, nc = (res[k]["rows_per_cpu_s"] for k in ("memory", "numpy"))
    for k in ("dask-files", "dask-frame"):
        d, dc = res[k]["rows_per_s_per_core"], res[k]["rows_per_cpu_s"]
        print(f"in-memory / {k} per core: {m / d:.2f} of wall time, {mc / dc:.2f} per CPU "
              f"second (target <= 1.5); numpy bound / {k}: {npb / d:.1f} per core, "
              f"{nc / dc:.1f} per CPU second; AUROC equal: "
              f"{res['memory']['auroc'] == res[k]['auroc']} ({res[k]['auroc']!r})")
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


def cmd_sites(args) -> None:
    import tempfile

    import yaml

    from rwe.cli import main as rwe_main
    from rwe.datasets._demo import write_demo
    from rwe.federation._merge import merge_sites
    from rwe.federation._site import load_site_summary
    from rwe.protocol import load_protocol

    d = Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    data = {"scans": d / "demo.parquet", "training": d / "training_snapshot.parquet"}
    if not all(p.is_file() for p in data.values()):
        data = write_demo(d, n_scans=args.rows)
    p = yaml.safe_load((ROOT / "protocols" / "demo.yaml").read_text())
    p["data"]["path"] = str(data["scans"])
    p["data"]["reference_rows"] = str(data["training"])
    ref = p.get("population", {}).get("reference")
    if ref and (ROOT / "protocols" / ref).exists():
        p["population"]["reference"] = str((ROOT / "protocols" / ref).resolve())
    p["federation"] = {"score_bins": 200, "min_count": 1, "sites": ["S1", "S2", "S3", "S4"],
                       "recode_order": ["ethnicity", "age_band", "race", "sex",
                                        "scanner_vendor", "month"]}
    proto = d / "fed.yaml"
    proto.write_text(yaml.safe_dump(p, sort_keys=False))
    files = [d / f"{s}.summary" for s in p["federation"]["sites"]]
    for s, f in zip(p["federation"]["sites"], files, strict=True):
        if not f.is_file():
            assert rwe_main(["summarize", str(proto), "--site", s, "--out", str(f),
                             "--release-log", str(d / "releases.jsonl")]) == 0
    size = sum(f.stat().st_size for f in files) / 1e6
    protocol = load_protocol(proto)
    t0 = time.perf_counter()
    loaded = [load_site_summary(f) for f in files]
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    _ = [s.checksum for s in loaded]
    t_ck = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = merge_sites(protocol, files)
    t_merge = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        for name, summary in res.merged.items():
            summary.save(Path(tmp) / f"{name}.summary")
        t_save = time.perf_counter() - t0
    print(f"{len(files)} site files ({size:.1f} MB, {args.rows:,} rows): read + check "
          f"{t_load:.2f} s; provenance checksums {t_ck:.2f} s; merge_sites (reading "
          f"included) {t_merge:.2f} s; saving the merged summaries {t_save:.2f} s; load "
          f"average {os.getloadavg()[0]:.1f}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("rows")
    r.add_argument("--rows", type=int, nargs="+", default=[10_000_000, 30_000_000, 100_000_000])
    r.add_argument("--route", choices=("files", "frame"), default="files")
    t = sub.add_parser("throughput")
    t.add_argument("--rows", type=int, default=10_000_000)
    for x in (r, t):
        x.add_argument("--repeat", type=int, default=1, help="best of N fresh-process runs")
        x.add_argument("--partition-rows", type=int, default=2_000_000)
        x.add_argument("--bins", type=int, default=1024)
        x.add_argument("--dir", default="/tmp/rwe-bench-scale")
    m = sub.add_parser("merge")
    m.add_argument("--sites", type=int, default=100)
    m.add_argument("--bins", type=int, default=200)
    st = sub.add_parser("sites")
    st.add_argument("--rows", type=int, default=1_000_000)
    st.add_argument("--dir", default="/tmp/rwe-bench-sites")
    one = sub.add_parser("_one")
    one.add_argument("kind")
    one.add_argument("bins", type=int)
    one.add_argument("files", nargs="+")
    args = ap.parse_args(argv)
    if args.cmd == "_one":
        files = [Path(f) for f in args.files]
        if args.kind.startswith("dask-"):
            out = run_dask(files, args.bins, args.kind.split("-", 1)[1])
        else:
            out = {"memory": run_memory, "numpy": run_numpy}[args.kind](files, args.bins)
        print(json.dumps(out))
        return
    {"rows": cmd_rows, "throughput": cmd_throughput, "merge": cmd_merge,
     "sites": cmd_sites}[args.cmd](args)


if __name__ == "__main__":
    main()
