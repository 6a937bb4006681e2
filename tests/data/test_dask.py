"""A dask DataFrame where an EvaluationSet's table goes (issue 20, item 1): summarized per
partition on a dask.distributed LocalCluster with worker processes, merged by tree reduction
with Summary.merge; the summary and every analysis equal the single-machine path.

Tolerances: counts, categories and histogram cells are compared exactly; sums and moments
(score sums, feature means and squared deviations, merged by Chan's update) and every number
of an analysis to rtol 1e-10 (floating-point summation order only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from rwe.data import DaskEvaluationSet, EvaluationSet
from rwe.exceptions import DataValidationError, InvalidParameterError
from rwe.protocol import load_protocol
from rwe.stats.summaries import summarize

dd = pytest.importorskip("dask.dataframe")

RTOL = 1e-10
DEMO_PROTOCOL = Path(__file__).resolve().parents[2] / "protocols" / "demo.yaml"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo protocol, its rows in memory and as 6 parquet partitions of uneven size,
    sorted by site so that partitions see different sites, months and categories."""
    p = load_protocol(DEMO_PROTOCOL)
    ev = p.load_data()
    df = pd.read_parquet(p.resolve(p.data.path)).sort_values(["site", "scan_date"],
                                                             kind="stable")
    d = tmp_path_factory.mktemp("parts")
    cuts = [0, 9_000, 30_000, 31_000, 55_000, 80_000, len(df)]
    for i, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
        df.iloc[a:b].to_parquet(d / f"part-{i}.parquet", index=False)
    ddf = dd.read_parquet(str(d / "*.parquet"))
    return p, ev, ddf


def _canonical(s):
    """The summary's cells as labels, sorted (cell order follows the merge, not the data)."""
    labels = [tuple(s.cells.categories[j][c] if c >= 0 else None
                    for j, c in enumerate(row)) for row in s.cells.codes]
    order = sorted(range(len(labels)), key=lambda i: [(x is None, x or "") for x in labels[i]])
    return [labels[i] for i in order], np.asarray(order)


def assert_same_summary(a, b):
    assert a.attributes == b.attributes and a.cells.categories == b.cells.categories
    la, oa = _canonical(a)
    lb, ob = _canonical(b)
    assert la == lb
    assert_array_equal(a.n[oa], b.n[ob])
    assert_array_equal(a.events[oa], b.events[ob])
    inv_a, inv_b = np.empty_like(oa), np.empty_like(ob)
    inv_a[oa], inv_b[ob] = np.arange(oa.size), np.arange(ob.size)
    assert a.versions == b.versions
    for v in a.versions:
        ta, tb = a.scores[v], b.scores[v]
        ka = np.lexsort((ta.label, ta.bin, inv_a[ta.cell]))
        kb = np.lexsort((tb.label, tb.bin, inv_b[tb.cell]))
        assert_array_equal(inv_a[ta.cell][ka], inv_b[tb.cell][kb])
        assert_array_equal(ta.bin[ka], tb.bin[kb])
        assert_array_equal(ta.label[ka], tb.label[kb])
        assert_array_equal(ta.count[ka], tb.count[kb])
        if ta.values is not None:
            assert_array_equal(ta.values, tb.values)
        else:
            assert_array_equal(ta.edges, tb.edges)
            assert_allclose(ta.psum[ka], tb.psum[kb], rtol=RTOL)
    assert list(a.features) == list(b.features)
    for k, fa in a.features.items():
        fb = b.features[k]
        if fa.kind == "categorical":
            assert fa.categories == fb.categories
            assert_array_equal(fa.counts[oa], fb.counts[ob])
        else:
            assert_array_equal(fa.n[oa], fb.n[ob])
            assert_array_equal(fa.missing[oa], fb.missing[ob])
            assert_allclose(fa.mean[oa], fb.mean[ob], rtol=RTOL, equal_nan=True)
            assert_allclose(fa.m2[oa], fb.m2[ob], rtol=RTOL, atol=1e-9, equal_nan=True)
    assert a.sources == b.sources


@pytest.mark.parametrize("resolution", ["full", 256])
def test_the_summary_of_partitions_is_the_summary_of_all_rows(demo, dask_client, resolution):
    p, ev, ddf = demo
    dev = EvaluationSet.from_frame(ddf, p.roles(), derived=p.derived_spec())
    assert isinstance(dev, DaskEvaluationSet) and dev.npartitions == 6
    spec = p.summary_spec(resolution=resolution)
    got = dev.summarize(spec, split_every=2)
    want = summarize(ev, spec)
    assert_same_summary(got, want)
    assert got.sources == ({"rows": 100_000, "patients": int(ev.frame["patient_id"].nunique())},)


def _tables_equal(a: pd.DataFrame, b: pd.DataFrame, key, what):
    a = a.set_index(key).sort_index()
    b = b.set_index(key).sort_index()
    assert_array_equal(a.index, b.index)
    for col in a.columns:
        if pd.api.types.is_float_dtype(a[col]):
            assert_allclose(b[col].to_numpy(float), a[col].to_numpy(float), rtol=RTOL,
                            atol=1e-14, equal_nan=True, err_msg=f"{what}.{col}")
        else:
            assert (a[col].astype(str).to_numpy() == b[col].astype(str).to_numpy()).all(), \
                f"{what}.{col}"


@pytest.fixture(scope="module")
def dev_full(demo, dask_client):
    p, _, ddf = demo
    return EvaluationSet.from_frame(ddf, p.roles(), derived=p.derived_spec())


def test_subgroup_performance_from_partitions_equals_one_machine(demo, dev_full):
    from rwe.subgroups import subgroup_performance_from_protocol

    p, ev, _ = demo
    want = subgroup_performance_from_protocol(p, ev, cluster_intervals=False)
    got = subgroup_performance_from_protocol(p, dev_full)
    assert type(got) is type(want)
    _tables_equal(want.table, got.table, ["metric", "group", "level"], "table")
    assert [(v.id, v.status) for v in got.verdicts] == [(v.id, v.status) for v in want.verdicts]
    # at full resolution the point estimates are the row-level ones
    o = got.table.set_index(["metric", "group", "level"]).loc[("auroc", "overall", "all")]
    from sklearn.metrics import roc_auc_score

    assert o["estimate"] == pytest.approx(roc_auc_score(ev.y_true, ev.score("1.0")), rel=1e-12)


def test_representativeness_from_partitions_equals_one_machine(demo, dev_full):
    from rwe.representativeness import representativeness_from_protocol

    p, ev, _ = demo
    want = representativeness_from_protocol(p, summarize(ev, p.summary_spec()))
    got = representativeness_from_protocol(p, dev_full)
    for name in ("shares", "tests", "coverage", "adequacy", "sites", "missingness", "smd"):
        pd.testing.assert_frame_equal(getattr(got, name), getattr(want, name), rtol=RTOL,
                                      obj=name)
    assert [(v.id, v.status) for v in got.verdicts] == [(v.id, v.status) for v in want.verdicts]


def test_drift_from_partitions_equals_one_machine(demo, dev_full):
    from rwe.drift import drift_from_protocol

    p, ev, _ = demo
    tests = [t for t in p.drift.tests if t != "classifier"]
    want = drift_from_protocol(p, ev, tests=tests)
    got = drift_from_protocol(p, dev_full, tests=tests)
    key = ["role", "feature", "test", "window", "group", "level"]
    _tables_equal(want.drift, got.drift, key, "drift")
    _tables_equal(want.performance, got.performance, ["metric", "window", "group", "level"],
                  "performance")
    pd.testing.assert_frame_equal(got.alarms.reset_index(drop=True),
                                  want.alarms.reset_index(drop=True), rtol=RTOL)
    assert [(v.id, v.status) for v in got.verdicts] == [(v.id, v.status) for v in want.verdicts]


def test_a_declared_resolution_is_small_and_equals_the_same_summary_in_memory(demo, dask_client):
    from rwe.subgroups import subgroup_performance_from_protocol

    p, ev, ddf = demo
    dev = EvaluationSet.from_frame(ddf, p.roles(), derived=p.derived_spec())
    dev = DaskEvaluationSet.from_frame(ddf, p.roles(), derived=p.derived_spec(),
                                       resolution=512)
    got = subgroup_performance_from_protocol(p, dev)
    want = subgroup_performance_from_protocol(
        p, summarize(ev, p.summary_spec(resolution=512)))
    _tables_equal(want.table, got.table, ["metric", "group", "level"], "table")
    t = got.table.set_index(["metric", "group", "level"])
    assert t.loc[("auroc", "overall", "all"), "ci_method"] == "delong-logit-t-binned"


def test_bad_tables_are_refused_naming_the_column_or_partition(demo, dask_client, tmp_path):
    p, _, ddf = demo
    with pytest.raises(DataValidationError) as e:
        EvaluationSet.from_frame(ddf.drop(columns=["malignant"]), p.roles(),
                                 derived=p.derived_spec())
    assert "'malignant'" in str(e.value)
    df = pd.read_parquet(p.resolve(p.data.path)).iloc[:3000].copy()
    df.loc[2500, "score_v1_0"] = 1.5
    df.iloc[:2000].to_parquet(tmp_path / "a.parquet", index=False)
    df.iloc[2000:].to_parquet(tmp_path / "b.parquet", index=False)
    dev = EvaluationSet.from_frame(dd.read_parquet(str(tmp_path / "*.parquet")), p.roles(),
                                   derived=p.derived_spec())
    with pytest.raises(DataValidationError) as e:
        dev.summarize(p.summary_spec())
    assert "<dask DataFrame> partition 1" in str(e.value) and "score_v1_0" in str(e.value)
    with pytest.raises(InvalidParameterError, match="keep_clusters=True needs"):
        summarize(dev, keep_clusters=True)
    with pytest.raises(InvalidParameterError, match="'nope' is not a column"):
        dev.summarize(attributes=["nope"])
    from rwe.subgroups import subgroup_performance

    with pytest.raises(InvalidParameterError, match="cluster_intervals=True needs every"):
        subgroup_performance(dev, by=["sex"], threshold=0.15, cluster_intervals=True)


def _rows(n, seed):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "score": rng.random(n), "y": (rng.random(n) < 0.3).astype(int),
        "sex": rng.choice(["M", "F"], n),
        "race": rng.choice(["White", "Black", "Asian", "Other"], n, p=[0.6, 0.2, 0.15, 0.05]),
        "site": rng.choice(["B", "A", "C"], n)})


ROLES = {"scores": {"1": "score"}, "label": "y", "site": "site", "attributes": ["sex", "race"]}


def test_categoricals_unknown_per_partition_get_the_levels_of_all_rows(dask_client, tmp_path):
    """Each parquet file has its own categories (dask: unknown categories), in another order
    and without the levels the file lacks; the summary has the sorted levels of all rows, as
    astype("category") of the pooled text columns."""
    df = _rows(3000, 1)
    cuts = [(0, 1000), (1000, 1100), (1100, 3000)]
    for i, (a, b) in enumerate(cuts):
        part = df.iloc[a:b].copy()
        if i == 1:
            part = part[part["race"] != "Asian"]
        for c in ("sex", "race", "site"):  # categories in order of appearance
            part[c] = pd.Categorical(part[c], categories=list(dict.fromkeys(part[c])))
        part.to_parquet(tmp_path / f"p{i}.parquet", index=False)
    ddf = dd.read_parquet(str(tmp_path / "*.parquet"))
    assert not ddf["race"].cat.known
    kept = pd.concat([df.iloc[:1000], df.iloc[1000:1100].query("race != 'Asian'"),
                      df.iloc[1100:]], ignore_index=True)
    want = summarize(EvaluationSet.from_frame(kept, ROLES))
    got = summarize(EvaluationSet.from_frame(ddf, ROLES))
    assert got.cells.categories == want.cells.categories == (
        ("F", "M"), ("Asian", "Black", "Other", "White"), ("A", "B", "C"))
    assert_same_summary(got, want)


def test_known_categories_keep_their_order_and_unobserved_levels(dask_client):
    df = _rows(4000, 2)
    df["race"] = pd.Categorical(df["race"], categories=["White", "Black", "Asian", "Other",
                                                        "Pacific Islander"])
    ddf = dd.from_pandas(df, npartitions=4, sort=False)
    assert ddf["race"].cat.known
    want = summarize(EvaluationSet.from_frame(df, ROLES))
    got = summarize(EvaluationSet.from_frame(ddf, ROLES))
    assert got.cells.categories[1] == ("White", "Black", "Asian", "Other", "Pacific Islander")
    assert_same_summary(got, want)
    from rwe.subgroups import subgroup_performance

    a = subgroup_performance(want, by=["race"], threshold=0.5).table
    b = subgroup_performance(EvaluationSet.from_frame(ddf, ROLES), by=["race"],
                             threshold=0.5).table
    _tables_equal(a, b, ["metric", "group", "level"], "table")


def test_one_pass_serves_the_analyses_at_full_resolution(dask_client):
    """At full resolution a threshold makes no bin edge: the summary made for subgroup
    performance (threshold 0.5) is the one representativeness takes; at declared bins it is
    not (the threshold is an edge there)."""
    dev = EvaluationSet.from_frame(dd.from_pandas(_rows(2000, 3), npartitions=3), ROLES)
    assert dev.summarize(thresholds=(0.5,)) is dev.summarize()
    binned = DaskEvaluationSet.from_frame(dd.from_pandas(_rows(2000, 3), npartitions=3), ROLES,
                                          resolution=10)
    a, b = binned.summarize(thresholds=(0.55,)), binned.summarize()
    assert a is not b and a.scores["1"].n_bins == 11 and b.scores["1"].n_bins == 10


# ------------------------------------------------------------------ the files of a source
@pytest.mark.parametrize("resolution", ["full", 256])
def test_the_files_of_a_pattern_summarize_to_the_table_of_them_all(demo, dask_client,
                                                                  resolution, tmp_path):
    """One task per file (read, validate, summarize) on the cluster: the summary of the
    pattern's table in memory (FileSetSource.read, pandas.concat of the files)."""
    from rwe.data import load_evaluation_set, source_from_path

    p, _, _ = demo
    df = pd.read_parquet(p.resolve(p.data.path)).sort_values(["site", "scan_date"],
                                                             kind="stable")
    for i, (a, b) in enumerate([(0, 20_000), (20_000, 20_001), (20_001, 70_000),
                                (70_000, len(df))]):
        df.iloc[a:b].to_parquet(tmp_path / f"p{i}.parquet", index=False)
    pattern = tmp_path / "p*.parquet"
    dev = DaskEvaluationSet.from_source(source_from_path(pattern), p.roles(),
                                        derived=p.derived_spec(), scheduler=dask_client)
    assert dev.npartitions == 4 and dev.source == "p*.parquet"
    ev = load_evaluation_set(source_from_path(pattern), p.roles(), derived=p.derived_spec())
    spec = p.summary_spec(resolution=resolution)
    got, want = dev.summarize(spec), summarize(ev, spec)
    assert_same_summary(got, want)
    assert dev.data_source.fingerprint()["rows"] == 100_000


def test_file_categories_follow_the_concatenation_of_the_files(dask_client, tmp_path):
    """Categoricals with an equal dtype in every file keep the first file's categories in its
    order (unobserved levels too), as pandas.concat keeps them (unordered categoricals with
    the same set of categories are equal dtypes); other columns get the sorted union."""
    from rwe.data import load_evaluation_set, source_from_path

    df = _rows(3000, 4)
    order = ["White", "Black", "Asian", "Other", "Pacific Islander"]
    for i, (a, b) in enumerate([(0, 1000), (1000, 1200), (1200, 3000)]):
        part = df.iloc[a:b].copy()
        # race: the same categories in every file, in another order after the first
        part["race"] = pd.Categorical(part["race"], categories=order if i == 0 else order[::-1])
        # site: the values of each file in order of appearance (a different set in f1)
        sites = list(dict.fromkeys(part["site"]))
        part["site"] = pd.Categorical(part["site"], categories=sites + (["D"] if i == 1 else []))
        part.to_parquet(tmp_path / f"f{i}.parquet", index=False)
    pattern = tmp_path / "f*.parquet"
    want = summarize(load_evaluation_set(source_from_path(pattern), ROLES))
    got = summarize(DaskEvaluationSet.from_source(source_from_path(pattern), ROLES,
                                                  scheduler=dask_client))
    assert got.cells.categories == want.cells.categories == (
        ("F", "M"), tuple(order), ("A", "B", "C"))
    assert_same_summary(got, want)


def test_a_file_without_a_column_or_with_a_bad_row_is_named(dask_client, tmp_path):
    from rwe.data import source_from_path

    df = _rows(600, 5)
    df.iloc[:300].to_parquet(tmp_path / "a.parquet", index=False)
    df.iloc[300:].drop(columns=["race"]).to_parquet(tmp_path / "b.parquet", index=False)
    with pytest.raises(DataValidationError) as e:
        DaskEvaluationSet.from_source(source_from_path(tmp_path / "*.parquet"), ROLES)
    assert e.value.messages == ["b.parquet: column 'race' not found; columns found: 'score', "
                                "'y', 'sex', 'site'"]
    bad = df.iloc[300:].copy()
    bad.iloc[7, bad.columns.get_loc("score")] = 1.5
    bad.to_parquet(tmp_path / "b.parquet", index=False)
    dev = DaskEvaluationSet.from_source(source_from_path(tmp_path / "*.parquet"), ROLES,
                                        scheduler=dask_client)
    with pytest.raises(DataValidationError) as e:
        dev.summarize()
    assert e.value.messages == ["b.parquet: column 'score' (score of model version 1): "
                                "probabilities must lie in [0, 1]; 1 offending row, first: 8"]
    with pytest.raises(InvalidParameterError, match="the dask engine reads CSV or Parquet"):
        from rwe.data import DuckDBSource

        DaskEvaluationSet.from_source(DuckDBSource(tmp_path / "a.parquet"), ROLES)
