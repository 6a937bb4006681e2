"""Memory of streaming a large database table into a mergeable summary (issue 19).

usage:
  python benchmarks/bench_sql_stream.py [--rows 2000000 4000000] [--batch 250000]
                                        [--backends postgresql duckdb] [--bins 2048]

A generated table (``id, score, y, grp``: ``--rows`` rows, scores with 1,000,003 distinct
values, 4 groups) is put into a PostgreSQL server started for the run (Debian's binaries, a
temporary directory, loopback: tests/postgres_server.py) and into a DuckDB file. Each
measurement runs in a fresh process under tracemalloc:

* ``stream``: :func:`rwe.stats.streaming.summarize_source` on an :class:`rwe.data.SQLSource`
  (a PostgreSQL server-side cursor / DuckDB record batches of ``--batch`` rows), at a declared
  resolution of ``--bins`` score bins;
* ``whole``: :meth:`SQLSource.read` of the table, then :func:`rwe.stats.summaries.summarize` of
  the EvaluationSet (the same summary, everything in memory);
* ``pandas`` (peer): ``pandas.read_sql`` of the query on a psycopg connection (DuckDB: its own
  ``fetch_df``), then a numpy bound of the same numbers: per group, rows, events and the
  histograms of the scores of events and non-events on the same bins (``np.bincount``);
* ``pandas-chunks`` (peer): ``pandas.read_sql(..., chunksize=--batch)`` (DuckDB:
  ``fetch_record_batch``), the numpy bound added up chunk by chunk.

It prints the peak traced Python memory (numpy, pandas, Arrow buffers allocated through
Python; DuckDB's own C++ allocations and libpq's are not traced) and the peak resident set
of the process, which counts them. Flat memory: the stream's peak is set by the batch, not by
the rows. pandas' chunks on PostgreSQL come from a client-side cursor: libpq holds the whole
result before the first chunk is made (in the peak RSS, not traced).
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

ROOT = Path(__file__).resolve().parents[1]
SQL_TABLE = ("SELECT g AS id, CAST(((g * 2654435761) % 1000003) / 1000003.0 AS DOUBLE "
             "PRECISION) AS score, "
             "CAST(g % 7 = 0 AS INTEGER) AS y, 'g' || CAST(g % 4 AS VARCHAR) AS grp FROM {gen}")
ROLES = {"id": "id", "scores": {"1": "score"}, "label": "y", "attributes": ["grp"]}


def _numpy_bound(df, bins: int, acc: dict) -> None:
    """Per group: rows, events and the event / non-event score histograms on ``bins`` uniform
    bins (the least work giving the summary's numbers), added into ``acc``."""
    import numpy as np

    score = df["score"].to_numpy(float)
    y = df["y"].to_numpy().astype(np.int64)
    codes, groups = df["grp"].factorize(sort=True)
    b = np.minimum((score * bins).astype(np.int64), bins - 1)
    for k, g in enumerate(groups):
        m = codes == k
        h = np.bincount(b[m] * 2 + y[m], minlength=2 * bins).reshape(bins, 2)
        acc[g] = acc.get(g, 0) + h


def _peer(mode: str, src, query: str, batch: int, bins: int) -> tuple[int, int]:
    """pandas.read_sql (whole or in chunks) / DuckDB's own fetch, then the numpy bound."""
    import warnings

    import pandas as pd

    acc: dict = {}
    if src.backend == "postgresql":
        import psycopg

        with psycopg.connect(src.url.conninfo) as con, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # pandas names SQLAlchemy; DBAPI works
            if mode == "pandas":
                _numpy_bound(pd.read_sql(query, con), bins, acc)
            else:
                for chunk in pd.read_sql(query, con, chunksize=batch):
                    _numpy_bound(chunk, bins, acc)
    else:
        import duckdb

        con = duckdb.connect(str(src.url.path), read_only=True)
        try:
            if mode == "pandas":
                _numpy_bound(con.execute(query).fetch_df(), bins, acc)
            else:
                res = con.execute(query)
                reader = getattr(res, "to_arrow_reader", None) or res.fetch_record_batch
                for rb in reader(batch):
                    _numpy_bound(rb.to_pandas(), bins, acc)
        finally:
            con.close()
    return (int(sum(h.sum() for h in acc.values())),
            int(sum(h[:, 1].sum() for h in acc.values())))


def _child(mode: str, url: str, batch: int, bins: int) -> dict:
    """One measurement (runs in its own process)."""
    import resource
    import tracemalloc

    from rwe.data import EvaluationSet, SQLSource
    from rwe.stats.streaming import summarize_source
    from rwe.stats.summaries import SummarySpec, summarize

    query = "SELECT id, score, y, grp FROM big"
    spec = SummarySpec(attributes=("grp",), resolution=bins, thresholds=(0.5,))
    src = SQLSource(url, query)
    tracemalloc.start()
    t0 = time.perf_counter()
    if mode == "stream":
        s = summarize_source(src, ROLES, spec, batch_rows=batch)
        rows, events = s.n_rows, s.n_events
    elif mode == "whole":
        s = summarize(EvaluationSet.from_frame(src.read(), ROLES), spec)
        rows, events = s.n_rows, s.n_events
    else:
        rows, events = _peer(mode, src, query, batch, bins)
    secs = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"rows": rows, "events": events, "peak_mb": peak / 1e6, "rss_mb": rss,
            "seconds": secs}


def _measure(mode: str, url: str, batch: int, bins: int, env: dict) -> dict:
    here = str(Path(__file__).parent)
    code = (f"import json, sys; sys.path.insert(0, {here!r}); from bench_sql_stream import "
            f"_child; print(json.dumps(_child({mode!r}, {url!r}, {batch:d}, {bins:d})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[2_000_000, 4_000_000])
    ap.add_argument("--batch", type=int, default=250_000)
    ap.add_argument("--bins", type=int, default=2048)
    ap.add_argument("--backends", nargs="+", default=["postgresql", "duckdb"])
    ap.add_argument("--modes", nargs="+",
                    default=["stream", "whole", "pandas", "pandas-chunks"])
    args = ap.parse_args()

    sys.path.insert(0, str(ROOT / "tests"))
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    server = None
    if "postgresql" in args.backends:
        from postgres_server import start_postgres

        server = start_postgres()
        if isinstance(server, str):
            print(f"no PostgreSQL: {server}")
            args.backends = [b for b in args.backends if b != "postgresql"]
            server = None
        else:
            env["PGPASSWORD"] = server.password
    tmp = Path(tempfile.mkdtemp(prefix="rwe-bench-sql-"))
    try:
        print(f"batch {args.batch:,} rows, {args.bins} score bins; load "
              f"{os.getloadavg()[0]:.1f}")
        print("backend     rows       mode           peak traced MB  peak RSS MB  seconds")
        for n in args.rows:
            urls = {}
            if server is not None:
                url = server.create_database(f"bench{n}")
                with server.connect(f"bench{n}") as con:
                    con.execute("CREATE TABLE big AS " + SQL_TABLE.format(
                        gen=f"generate_series(1, {n}) AS g"))
                    con.commit()
                urls["postgresql"] = url
            if "duckdb" in args.backends:
                import duckdb

                path = tmp / f"bench{n}.duckdb"
                con = duckdb.connect(str(path))
                con.execute("CREATE TABLE big AS " + SQL_TABLE.replace("g AS id", "range AS id")
                            .replace("(g ", "(range ").replace("g % ", "range % ")
                            .format(gen=f"range(1, {n + 1})"))
                con.close()
                urls["duckdb"] = f"duckdb:{path}"
            for backend, url in urls.items():
                for mode in args.modes:
                    r = _measure(mode, url, args.batch, args.bins, env)
                    assert r["rows"] == n and r["events"] == n // 7, r
                    print(f"{backend:<11} {n:>9,}  {mode:<14} {r['peak_mb']:>14.1f} "
                          f"{r['rss_mb']:>12.0f} {r['seconds']:>8.1f}", flush=True)
    finally:
        if server is not None:
            server.stop()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
