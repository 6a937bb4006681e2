"""Write the rwe demo scenario (demo.parquet, training_snapshot.parquet) and print sha256.

Usage: python datasets/demo/generate.py [--out DIR] [--seed 20261123] [--n-scans 100000]
Thin wrapper around :func:`rwe.datasets.write_demo`; see README.md next to this file.
"""

from __future__ import annotations

import argparse

from rwe.datasets import DEMO_N_SCANS, DEMO_N_TRAINING, DEMO_SEED, file_sha256, write_demo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="output directory (default: datasets/demo)")
    parser.add_argument("--seed", type=int, default=DEMO_SEED)
    parser.add_argument("--n-scans", type=int, default=DEMO_N_SCANS)
    parser.add_argument("--n-training", type=int, default=DEMO_N_TRAINING)
    args = parser.parse_args(argv)
    paths = write_demo(args.out, seed=args.seed, n_scans=args.n_scans,
                       n_training=args.n_training)
    for path in paths.values():
        print(f"{file_sha256(path)}  {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
