"""Benchmark the evidence dossier against papermill running the same number of empty notebooks.

usage:
  python benchmarks/bench_dossier.py [--protocol protocols/demo.yaml] [--jobs 2] [--repeat 1]
                                     [--pdf]

Target (issue 5): the demo dossier (~100k rows, all sections) takes no more than 2x the time
papermill needs to run the same number of empty notebooks, on the same machine in the same
run. The baseline runs one empty notebook per dossier section (a tagged parameters cell with
the same two parameters and one empty code cell) through ``papermill.execute_notebook`` with
the same kernel and papermill's defaults, one after another (as papermill runs notebooks) and,
for reference, with the dossier's parallelism. Each round runs the three measurements back to
back (shared machines drift in speed); the best of each over the rounds is compared. The dossier is built with ``rwe.dossier.build_dossier`` (no PDF unless
``--pdf``: the baseline renders nothing). Printed: both times, the ratios, and where the
dossier's time goes (per-notebook wall time from manifest.json).

Never a test: timings depend on the machine. Compare the ratios printed in one run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def empty_notebooks(directory: Path, n: int) -> list[Path]:
    import nbformat

    paths = []
    for i in range(n):
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}
        nb.metadata["language_info"] = {"name": "python"}
        p = nbformat.v4.new_code_cell('protocol = ""\nout_dir = ""')
        p.metadata["tags"] = ["parameters"]
        nb.cells = [p, nbformat.v4.new_code_cell("")]
        path = directory / f"empty_{i}.ipynb"
        nbformat.write(nb, str(path))
        paths.append(path)
    return paths


def run_empty(paths: list[Path], out: Path, jobs: int, protocol: Path) -> float:
    import papermill as pm

    from rwe.dossier._build import KERNEL_NAME, _close_thread_loop

    def one(path: Path) -> None:
        pm.execute_notebook(str(path), str(out / path.name),
                            parameters={"protocol": str(protocol), "out_dir": str(out)},
                            kernel_name=KERNEL_NAME, progress_bar=False,
                            extra_arguments=["--IPKernelApp.log_level=CRITICAL"])
        _close_thread_loop()

    t0 = time.perf_counter()
    if jobs == 1:
        for p in paths:
            one(p)
    else:
        with ThreadPoolExecutor(jobs) as ex:
            list(ex.map(one, paths))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--protocol", default=str(ROOT / "protocols" / "demo.yaml"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1,
                    help="rounds (each runs all three); the best time of each is kept")
    ap.add_argument("--pdf", action="store_true", help="also time the dossier with its PDF")
    args = ap.parse_args()

    from rwe.dossier import build_dossier
    from rwe.dossier._notebook import _ensure_demo_data
    from rwe.protocol import load_protocol

    protocol = Path(args.protocol).resolve()
    proto = load_protocol(protocol)
    _ensure_demo_data(proto)
    n = len(proto.report.sections)
    with tempfile.TemporaryDirectory(prefix="bench-dossier-") as tmp:
        tmp = Path(tmp)
        paths = empty_notebooks(tmp, n)
        (tmp / "out").mkdir()
        # one untimed run of each first: disk cache, bytecode, first imports in this process
        run_empty(paths[:1], tmp / "out", 1, protocol)
        build_dossier(protocol, tmp / "warm", jobs=args.jobs, pdf=False, progress=False)
        # Rounds interleave the three measurements, so that a machine whose speed drifts
        # (shared hosts) affects them alike; the ratio of each round is printed too.
        rounds = []
        for i in range(args.repeat):
            seq_i = run_empty(paths, tmp / "out", 1, protocol)
            par_i = run_empty(paths, tmp / "out", args.jobs, protocol)
            t0 = time.perf_counter()
            res_i = build_dossier(protocol, tmp / f"dossier{i}", jobs=args.jobs, pdf=False,
                                  progress=False)
            rounds.append((seq_i, par_i, time.perf_counter() - t0, res_i))
        seq = min(r[0] for r in rounds)
        par = min(r[1] for r in rounds)
        dossier, res = min(((r[2], r[3]) for r in rounds), key=lambda b: b[0])
        with_pdf = None
        if args.pdf:
            t0 = time.perf_counter()
            r2 = build_dossier(protocol, tmp / "dossier-pdf", jobs=args.jobs, pdf=True,
                               progress=False)
            with_pdf = (time.perf_counter() - t0, r2.pdf is not None)

    rows = len(proto.load_data())
    print(f"protocol {protocol.name}: {rows:,} rows, {n} sections; jobs={args.jobs}; "
          f"best of {args.repeat}")
    print(f"  papermill, {n} empty notebooks, one after another : {seq:7.2f} s")
    print(f"  papermill, {n} empty notebooks, {args.jobs} at a time        : {par:7.2f} s")
    print(f"  rwe dossier (HTML, results, manifest; no PDF)     : {dossier:7.2f} s")
    if with_pdf is not None:
        print(f"  rwe dossier with PDF (written: {with_pdf[1]})           : {with_pdf[0]:7.2f} s")
    print(f"  ratio dossier / empty notebooks one after another : {dossier / seq:7.2f}  "
          "(target <= 2)")
    print(f"  ratio dossier / empty notebooks {args.jobs} at a time      : {dossier / par:7.2f}")
    print("  rounds (empty one after another, dossier, ratio): " + "; ".join(
        f"{r[0]:.2f} s, {r[2]:.2f} s, {r[2] / r[0]:.2f}" for r in rounds))
    print("  per notebook (wall time inside the fastest dossier build):")
    for nb in res.manifest["notebooks"]:
        print(f"    {nb['section']:<20} {nb['duration_seconds']:6.2f} s")


if __name__ == "__main__":
    main()
