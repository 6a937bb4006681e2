"""``rwe summarize`` of a site whose rows are read in partitions (``data.engine: dask``): the
disclosure rule decided on the counts of the kinds of row (protect_arrays with weights) makes
the same decisions as on the rows, and the site summary equals the one made in memory
(counts, categories, disclosure record and released period exactly; sums and moments to rtol
1e-10, floating-point summation order only).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fed_helpers import ROOT, SITES, federated_protocol

from rwe.cli import main
from rwe.federation import load_site_summary
from rwe.federation._disclosure import protect_arrays
from rwe.federation._site import summarize_site
from rwe.protocol import load_protocol

pytest.importorskip("distributed")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from test_dask import assert_same_summary  # noqa: E402


def _engine(path: Path, parts: Path, block: str) -> Path:
    out = path.with_name(path.stem + "-dask.yaml")
    out.write_text(path.read_text().replace(f"  path: {parts}\n", f"  path: {parts}\n{block}"))
    return out


@pytest.fixture(scope="module")
def sites(tmp_path_factory, dask_client):
    """The demo rows as 5 parquet files in time order (every file holds every site), with a
    federated protocol read in memory and the same read in partitions on the session's
    cluster; min_count 11 (the protocol's) and 40 (more cells recoded, rows withheld)."""
    d = tmp_path_factory.mktemp("dasksite")
    df = pd.read_parquet(ROOT / "datasets/demo/demo.parquet").sort_values("scan_date",
                                                                         kind="stable")
    (d / "parts").mkdir()
    cuts = [0, 12_000, 40_000, 40_500, 77_000, len(df)]
    for i, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
        df.iloc[a:b].to_parquet(d / "parts" / f"part-{i}.parquet", index=False)
    parts = d / "parts" / "*.parquet"
    block = f"  engine: dask\n  dask: {{scheduler: {dask_client.scheduler.address}}}\n"
    out = {}
    for k in (None, 40):
        mem = federated_protocol(d, data=parts, min_count=k, name=f"fed-{k}.yaml")
        out[k] = (load_protocol(mem), load_protocol(_engine(mem, parts, block)))
    return d, out


@pytest.mark.parametrize("k", [None, 40])
@pytest.mark.parametrize("site", SITES)
def test_a_site_summary_from_partitions_is_the_one_made_in_memory(sites, site, k):
    _, protos = sites
    mem, dsk = protos[k]
    assert dsk.data.engine == "dask" and dsk.sha256 == mem.sha256  # engine: not in the hash
    a, ra = summarize_site(mem, site)
    b, rb = summarize_site(dsk, site)
    assert a.disclosure == b.disclosure and a.period == b.period and a.skipped == b.skipped
    if k == 40:
        assert any(a.disclosure["cohort"]["recoded_cells"].values())
    assert {x: v for x, v in ra.items() if x != "checksum"} == {
        x: v for x, v in rb.items() if x != "checksum"}
    assert list(a.views) == list(b.views) == ["cohort", "drift"]
    for v in a.views:
        assert_same_summary(a.views[v], b.views[v])


def test_a_period_and_bad_sites_from_partitions(sites):
    from rwe.federation import FederationError

    _, protos = sites
    mem, dsk = protos[None]
    a, ra = summarize_site(mem, "S3", period=("2024-03-01", "2024-08-31"))
    b, rb = summarize_site(dsk, "S3", period=("2024-03-01", "2024-08-31"))
    assert ra["rows"] == rb["rows"] and ra["period"] == rb["period"] and a.period == b.period
    for v in a.views:
        assert_same_summary(a.views[v], b.views[v])
    for proto in (mem, dsk):
        with pytest.raises(FederationError, match=r"no row of site 'S3' in the period "
                                                  r"2030-01-01 to 2030-02-01"):
            summarize_site(proto, "S3", period=("2030-01-01", "2030-02-01"))
    spec = mem.federation.model_copy(update={"sites": []})
    for proto in (mem, dsk):
        p = proto.model_copy(update={"federation": spec})
        p._path, p._positions = proto._path, proto._positions
        with pytest.raises(FederationError) as e:
            summarize_site(p, "S9")
        assert str(e.value).endswith("no row has site = 'S9' (values found: S1, S2, S3, S4)")


def test_rwe_summarize_of_partitions_merges_with_sites_read_in_memory(sites, tmp_path, capsys):
    d, protos = sites
    mem, dsk = protos[None]
    files = []
    for i, s in enumerate(SITES):  # half the sites read with dask, half in memory
        out = tmp_path / f"{s}.summary"
        proto = dsk if i % 2 else mem
        assert main(["summarize", str(proto.path), "--site", s, "--out", str(out),
                     "--release-log", str(tmp_path / f"{s}.log")]) == 0
        files.append(out)
    assert "site summary of S2 written to" in capsys.readouterr().out
    res = tmp_path / "results"
    assert main(["merge", *map(str, files), "--protocol", str(mem.path), "--out",
                 str(res)]) == 0
    b = load_site_summary(files[1])
    a, _ = summarize_site(mem, "S2")
    assert_same_summary(a.views["cohort"], b.views["cohort"])


def test_weights_make_the_decisions_of_the_rows():
    """protect_arrays on the distinct kinds of row with their numbers decides as on the rows
    themselves (recoded attributes, rows kept, features withheld, the record)."""
    rng = np.random.default_rng(7)
    n = 4000
    a = rng.choice(5, n, p=[0.6, 0.25, 0.1, 0.04, 0.01]).astype(np.int32)
    b = rng.choice(4, n, p=[0.5, 0.3, 0.15, 0.05]).astype(np.int32)
    y = rng.random(n) < 0.2
    f = rng.choice(3, n, p=[0.8, 0.15, 0.05]).astype(np.int64)
    x = np.where(rng.random(n) < 0.1, np.nan, 0.0)
    kw = dict(k=11, recode_order=["b", "a"])
    oa, keep, of, rec = protect_arrays(
        attributes={"a": (a, 5), "b": (b, 4)}, y=y,
        features={"f": ("categorical", f, 3), "x": ("continuous", x, 0)}, **kw)
    kinds, inv, w = np.unique(np.stack([a, b, y, f, np.isnan(x)], axis=1), axis=0,
                              return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)
    ka, kb, ky, kf, kx = kinds.T
    oa2, keep2, of2, rec2 = protect_arrays(
        attributes={"a": (ka.astype(np.int32), 5), "b": (kb.astype(np.int32), 4)},
        y=ky.astype(bool), features={"f": ("categorical", kf, 3),
                                     "x": ("continuous", np.where(kx == 1, np.nan, 0.0), 0)},
        weights=w, **kw)
    assert rec2 == rec and rec.changed
    np.testing.assert_array_equal(keep2[inv], keep)
    kept_kinds = inv[keep]  # each kept row's kind, among the kept kinds
    pos = np.cumsum(keep2) - 1
    for name in ("a", "b"):
        np.testing.assert_array_equal(oa2[name][pos[kept_kinds]], oa[name])
    np.testing.assert_array_equal(of2["f"][pos[kept_kinds]], of["f"])
    np.testing.assert_array_equal(np.isnan(of2["x"][pos[kept_kinds]]), np.isnan(of["x"]))
