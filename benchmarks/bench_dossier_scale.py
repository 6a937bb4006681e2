"""The demo dossier at scale: the demo scenario generated at N rows, read from Parquet, built
with ``rwe dossier`` in a separate process; wall time and peak memory of the whole process
tree (the build, its second process and every kernel) sampled while it runs.

usage:
  python benchmarks/bench_dossier_scale.py [--rows 1000000 10000000] [--jobs 2]

Targets (issue 20): at 1M rows the full dossier (every section of protocols/demo.yaml, no PDF)
in under 10 s with a peak under 1 GB; at 10M rows under 2 minutes and 2 GB. The same run at
the demo's 100,000 rows is printed first for comparison. The protocol is protocols/demo.yaml
with its data paths pointing at the generated files and its ledger in the temporary
directory (the change-control page then says the comparison is not recorded: it is computed
all the same). Peak memory is the largest sum of the resident set sizes of the build's
process tree over 50 ms samples (shared pages counted once per process: an upper bound).

Never a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _protocol(tmp: Path, data: dict[str, Path]) -> Path:
    import yaml

    p = yaml.safe_load((ROOT / "protocols" / "demo.yaml").read_text())
    p["data"]["path"] = str(data["scans"])
    p["data"]["reference_rows"] = str(data["training"])
    p["change_control"]["ledger"] = str(tmp / "ledger.jsonl")
    ref = p.get("population", {}).get("reference")
    if ref and not Path(ref).is_absolute() and (ROOT / "protocols" / ref).exists():
        p["population"]["reference"] = str((ROOT / "protocols" / ref).resolve())
    out = tmp / "demo.yaml"
    out.write_text(yaml.safe_dump(p, sort_keys=False))
    return out


def _run(protocol: Path, out: Path, jobs: int) -> tuple[float, float, float, dict]:
    import psutil

    cmd = [sys.executable, "-m", "rwe.cli", "dossier", str(protocol), "--out", str(out),
           "--force", "--no-pdf", "--jobs", str(jobs)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    top = psutil.Process(proc.pid)
    peak_tree = peak_main = 0
    while proc.poll() is None:
        try:
            procs = [top] + top.children(recursive=True)
            rss = []
            for p in procs:
                try:
                    rss.append(p.memory_info().rss)
                except psutil.Error:
                    pass
            peak_tree = max(peak_tree, sum(rss))
            peak_main = max(peak_main, rss[0] if rss else 0)
        except psutil.Error:
            pass
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    err = proc.stderr.read()
    if proc.returncode != 0:
        raise SystemExit(f"rwe dossier failed ({proc.returncode}):\n{err}")
    manifest = json.loads((out / "manifest.json").read_text())
    return wall, peak_tree / 2**30, peak_main / 2**30, manifest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()

    from rwe.datasets._demo import write_demo

    for n in [100_000, *args.rows]:
        with tempfile.TemporaryDirectory(prefix="bench-dossier-scale-") as tmp:
            tmp = Path(tmp)
            t0 = time.perf_counter()
            data = write_demo(tmp / "data", n_scans=n)
            gen = time.perf_counter() - t0
            protocol = _protocol(tmp, data)
            wall, tree, main_gb, m = _run(protocol, tmp / "dossier", args.jobs)
            print(f"{n:>11,} rows (generated in {gen:.1f} s): dossier {wall:7.2f} s, peak "
                  f"{tree:5.2f} GB (process tree), {main_gb:5.2f} GB (build process)")
            print("    phases: " + ", ".join(f"{k} {v:.1f} s"
                                             for k, v in m["phases_seconds"].items()))
            print("    analyses: " + ", ".join(f"{k} {v:.1f} s" for k, v in
                                               sorted(m["analysis_seconds"].items(),
                                                      key=lambda kv: -kv[1])))
            print("    notebooks: " + ", ".join(f"{nb['section']} {nb['duration_seconds']:.1f} s"
                                              for nb in m["notebooks"]))


if __name__ == "__main__":
    main()
