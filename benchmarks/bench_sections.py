"""CPU seconds of each dossier section's analysis, in one process: where a dossier build's
time goes at N rows (issues 15 and 20).

usage:
  python benchmarks/bench_sections.py [--rows 1000000] [--dir DIR] [--sections drift ...]
  python benchmarks/bench_sections.py --protocol protocols/demo.yaml
  python benchmarks/bench_sections.py --sections subgroups --fit-rows   # grid fits off

The demo scenario is generated at ``--rows`` rows into ``--dir`` (kept and reused when it is
already there; a temporary directory otherwise), with protocols/demo.yaml pointed at it as
bench_dossier_scale.py does; ``--protocol`` times a protocol's own data instead. Printed for
the data load and for every section (its extras included, e.g. Table 1 with
representativeness): ``time.process_time`` (CPU of this process, all threads) and wall time.
CPU seconds are the figure to compare on a shared machine; wall time is printed for reference.

Never a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ["subgroups", "representativeness", "drift", "change_control", "provenance"]


def _scenario(directory: Path, rows: int) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_dossier_scale import _protocol

    from rwe.datasets._demo import write_demo

    data = {"scans": directory / "data" / "demo.parquet",
            "training": directory / "data" / "training_snapshot.parquet"}
    if not all(p.is_file() for p in data.values()):
        data = write_demo(directory / "data", n_scans=rows)
    return _protocol(directory, data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--protocol", type=Path, default=None)
    ap.add_argument("--sections", nargs="+", default=SECTIONS)
    ap.add_argument("--fit-rows", action="store_true",
                    help="fit_logistic on rows only (its grid fast path off: the baseline)")
    args = ap.parse_args()
    if args.fit_rows:
        import rwe.stats._logistic as logistic

        logistic._GRID_MIN_ROWS = sys.maxsize

    with tempfile.TemporaryDirectory(prefix="bench-sections-") as tmp:
        if args.protocol is not None:
            path = args.protocol
        else:
            directory = args.dir or Path(tmp)
            directory.mkdir(parents=True, exist_ok=True)
            path = _scenario(directory, args.rows)

        from rwe.dossier._analyses import analysis, compute_record
        from rwe.protocol import load_protocol

        protocol = load_protocol(path)
        c, w = time.process_time(), time.perf_counter()
        evset = protocol.load_data()
        print(f"{'load data':<20} {time.process_time() - c:7.2f} s CPU "
              f"{time.perf_counter() - w:7.2f} s wall  ({evset.n:,} rows)")
        done: dict = {}
        for name in args.sections:
            for dep in analysis(name).needs:  # computed first, not timed
                if dep not in done:
                    done[dep] = compute_record(dep, protocol, evset, done)[0]
            c, w = time.process_time(), time.perf_counter()
            done[name] = compute_record(name, protocol, evset, done)[0]
            print(f"{name:<20} {time.process_time() - c:7.2f} s CPU "
                  f"{time.perf_counter() - w:7.2f} s wall")


if __name__ == "__main__":
    main()
