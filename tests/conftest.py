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
