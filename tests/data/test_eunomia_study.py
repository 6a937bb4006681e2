"""The Eunomia GiBleed study (a real OMOP CDM instance, 2,694 synthetic persons) evaluated from
PostgreSQL, from DuckDB and from a Parquet export of the evaluation table: identical subgroup
performance tables and representativeness shares; the table itself checked against the CDM's
raw tables with pandas; the stream through the server-side cursor merging to the same numbers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rwe.data import provenance
from rwe.data._sql import _RowHasher
from rwe.datasets._eunomia import EUNOMIA_COHORT, EUNOMIA_HORIZON, EUNOMIA_OUTCOME
from rwe.protocol import load_protocol
from rwe.representativeness import ReferencePopulation, assess_representativeness
from rwe.subgroups import subgroup_performance_from_protocol

duckdb = pytest.importorskip("duckdb")

PROTOCOL = """\
name: eunomia-gibleed
device:
  name: GI bleed risk score (test)
  version: "1"
  intended_use: risk of gastrointestinal bleeding within a year of starting an NSAID
  intended_use_population: adults starting celecoxib or diclofenac
data:
{data}
  columns:
    id: row_id
    patient_id: person_id
    timestamp: index_date
    label: outcome
    scores: {{"1": risk_v1, "2": risk_v2}}
    site: care_site
    attributes: [gender, race, ethnicity]
    features: [age]
  derived:
    age_band: {{from: age, cuts: [30, 40]}}
subgroups:
  attributes: [gender, race, ethnicity, age_band, care_site]
  intersections: [[gender, race]]
  min_n: 30
performance:
  metrics: [sensitivity, specificity, ppv, npv, auroc, brier]
  threshold: 0.2
report:
  title: Eunomia GiBleed
"""
OMOP = """\
  source:
    kind: omop
    url: {url}
{schema}    cohort: {cohort}
    outcome: {outcome}
    horizon: {horizon}
    predictions: rwe_predictions
    cdm_version: "5.3"
"""
#: US 2020 census shares with the OMOP concept names (only the equality of the three runs is
#: asserted here; the figures are those of datasets/reference/us_census_2020.csv).
REFERENCE = {"gender": {"FEMALE": 0.509, "MALE": 0.491},
             "race": {"White": 0.616, "Black or African American": 0.124, "Asian": 0.06,
                      "Other": 0.2},
             "ethnicity": {"Hispanic or Latino": 0.187, "Not Hispanic or Latino": 0.813}}


def _omop(url: str, schema: str | None = None) -> str:
    return OMOP.format(url=url, schema=f"    schema: {schema}\n" if schema else "",
                       cohort=EUNOMIA_COHORT, outcome=EUNOMIA_OUTCOME, horizon=EUNOMIA_HORIZON)


@pytest.fixture(scope="module")
def protocols(eunomia_study, tmp_path_factory, request):
    """The study's protocol on DuckDB, on a Parquet export of its evaluation table and, where
    a PostgreSQL server can run, on PostgreSQL (else ``"postgresql"`` holds the reason)."""
    d = tmp_path_factory.mktemp("eunomia_protocols")
    out = {}
    (d / "duckdb.yaml").write_text(PROTOCOL.format(data=_omop(f"duckdb:{eunomia_study}")))
    out["duckdb"] = d / "duckdb.yaml"
    # the Parquet export of the evaluation table read from DuckDB
    table = load_protocol(out["duckdb"]).data_source().read()
    table.to_parquet(d / "eunomia.parquet", index=False)
    (d / "parquet.yaml").write_text(PROTOCOL.format(data="  path: eunomia.parquet"))
    out["parquet"] = d / "parquet.yaml"
    try:
        url = request.getfixturevalue("eunomia_postgres")
    except pytest.skip.Exception as exc:  # no server here: the other two still run
        out["postgresql"] = str(exc)
    else:
        (d / "postgresql.yaml").write_text(PROTOCOL.format(data=_omop(url, "cdm")))
        out["postgresql"] = d / "postgresql.yaml"
    return out


@pytest.fixture
def pgpass(monkeypatch, postgres_server):
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)


@pytest.fixture(scope="module")
def loaded(protocols, request):
    """Each protocol and its evaluation set (PostgreSQL's read with PGPASSWORD set)."""
    with pytest.MonkeyPatch.context() as mp:
        if not isinstance(protocols["postgresql"], str):
            mp.setenv("PGPASSWORD", request.getfixturevalue("postgres_server").password)
        out = {}
        for name, path in protocols.items():
            if isinstance(path, str):
                out[name] = path
                continue
            p = load_protocol(path)
            out[name] = (p, p.load_data())
        return out


def _pg(loaded):
    """The PostgreSQL run, or a skip with the server's reason."""
    if isinstance(loaded["postgresql"], str):
        pytest.skip(loaded["postgresql"])
    return loaded["postgresql"]


def test_the_evaluation_table_matches_the_raw_cdm(eunomia_study, loaded):
    """Entries, outcomes in the time at risk, age and the unknown ethnicity recomputed from the
    CDM's raw tables with pandas."""
    con = duckdb.connect(str(eunomia_study), read_only=True)
    try:
        cohort = con.execute("SELECT * FROM cohort").df()
        person = con.execute("SELECT person_id, year_of_birth, ethnicity_concept_id FROM "
                             "person").df()
    finally:
        con.close()
    cohort.columns = [c.lower() for c in cohort.columns]
    person.columns = [c.lower() for c in person.columns]
    target = cohort[cohort.cohort_definition_id == EUNOMIA_COHORT]
    outc = cohort[cohort.cohort_definition_id == EUNOMIA_OUTCOME]
    m = target.merge(outc, on="subject_id", how="left", suffixes=("", "_o"))
    days = (pd.to_datetime(m.cohort_start_date_o) - pd.to_datetime(m.cohort_start_date)).dt.days
    m["hit"] = days.between(1, EUNOMIA_HORIZON)
    events = m.groupby(["subject_id", "cohort_start_date"])["hit"].any()
    t = target.merge(person, left_on="subject_id", right_on="person_id")
    _, ev = loaded["duckdb"]
    f = ev.frame.sort_values("person_id")
    assert len(ev) == len(target) == 2630 and f["person_id"].nunique() == 2630
    assert int(ev.y_true.sum()) == int(events.sum()) == 479
    age = pd.to_datetime(t.sort_values("subject_id").cohort_start_date).dt.year.to_numpy() \
        - t.sort_values("subject_id").year_of_birth.to_numpy()
    np.testing.assert_array_equal(f["age"].to_numpy(), age)
    # Synthea writes ethnicity concept 0 for non-Hispanic persons: "unknown", never merged
    assert (f["ethnicity"] == "unknown").sum() == (t.ethnicity_concept_id == 0).sum() == 2207
    assert set(f["ethnicity"]) == {"unknown", "Hispanic or Latino"}


def test_postgres_duckdb_and_parquet_give_identical_results(loaded):
    tables, shares = {}, {}
    ref = ReferencePopulation.from_shares(REFERENCE, name="census-omop")
    runs = {k: v for k, v in loaded.items() if not isinstance(v, str)}
    for name, (p, ev) in runs.items():
        tables[name] = subgroup_performance_from_protocol(p, ev).to_frame()
        rep = assess_representativeness(ev, reference=ref,
                                        attributes=["gender", "race", "ethnicity"])
        shares[name] = rep.to_frame()
    base = tables["duckdb"]
    assert len(base) > 100 and set(base["group"]) >= {"gender", "race", "care_site",
                                                       "gender x race"}
    for name in ("postgresql", "parquet"):
        if name in runs:
            pd.testing.assert_frame_equal(tables[name], base, check_exact=True)
            pd.testing.assert_frame_equal(shares[name], shares["duckdb"], check_exact=True)
    eth = shares["duckdb"]
    eth = eth[eth["attribute"] == "ethnicity"].set_index("category")
    assert eth.loc["unknown", "n"] == 2207 and eth.loc["unknown", "flag"] == "not in reference"
    _pg(loaded)  # the three-way comparison needs the server


def test_the_rows_hash_is_the_same_from_every_source(loaded):
    hashes = {}
    for name, (_, ev) in ((k, v) for k, v in loaded.items() if not isinstance(v, str)):
        fp = ev.source_fingerprint
        if name == "parquet":
            h = _RowHasher()
            h.update(ev.data_source.read(fp["columns"]))
            hashes[name] = h.hexdigest()
        else:
            hashes[name] = fp["rows_sha256"]
            assert fp["kind"] == "omop" and fp["rows"] == 2630
            assert fp["omop"]["cdm_version"] == "5.3"
    assert len(set(hashes.values())) == 1
    _pg(loaded)


def test_provenance_records_identity_query_rows_never_the_password(loaded, postgres_server):
    p, ev = _pg(loaded)
    prov = provenance(ev)
    (rec,) = prov.files
    assert rec["url"] == p.data_location().split(" ")[0]
    assert rec["database"]["database"] == "eunomia" and rec["database"]["user"] == "rwe_test"
    assert rec["rows"] == 2630 and "FROM target t" in rec["query"]
    assert rec["omop"]["schema"] == "cdm" and rec["omop"]["cohort_entries"] == 2630
    assert postgres_server.password not in json.dumps(prov.to_dict(), default=str)


def test_streaming_from_postgres_merges_to_the_pooled_numbers(loaded, pgpass):
    p, ev = _pg(loaded)
    pooled = subgroup_performance_from_protocol(p, ev, fairness=False, cluster_intervals=False)
    summary = p.summarize_data(batch_rows=300)
    assert summary.sources == ({"source": p.data_source().name, "rows": 2630, "batches": 9,
                                "patients": 2630},)
    streamed = subgroup_performance_from_protocol(p, summary, fairness=False)
    key = ["metric", "group", "level"]
    a = pooled.table.set_index(key).sort_index()
    b = streamed.table.set_index(key).sort_index()
    pd.testing.assert_index_equal(a.index, b.index)
    for col in ("n", "events", "estimate", "ci_low", "ci_high"):
        np.testing.assert_allclose(b[col].to_numpy(float), a[col].to_numpy(float),
                                   rtol=1e-12, atol=1e-14)


def test_the_shipped_protocol_and_script(eunomia_study, tmp_path, capsys):
    """datasets/omop: the build script (an existing study is kept) and the protocol beside it."""
    import importlib.util
    import shutil
    from pathlib import Path

    from rwe.cli import main

    root = Path(__file__).resolve().parents[2] / "datasets" / "omop"
    spec = importlib.util.spec_from_file_location("build_eunomia_study",
                                                  root / "build_eunomia_study.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--out", str(eunomia_study.parent)]) == 0
    assert capsys.readouterr().out == f"study: {eunomia_study}\n"
    shutil.copy(root / "eunomia_gibleed.yaml", tmp_path)
    shutil.copy(eunomia_study, tmp_path)
    assert main(["validate", str(tmp_path / "eunomia_gibleed.yaml")]) == 0
    out = capsys.readouterr().out
    assert "(OMOP CDM, cohort 1, outcome 3)" in out and "2630" in out and "479" in out


def test_the_dossier_records_the_database_source(loaded, postgres_server):
    """A dossier on a database source: the manifest's input and the provenance section's file
    record give the server, the CDM, the query and the rows' sha256 (no file to hash), and
    the provenance pages show them, never the password."""
    from rwe.dossier._analyses import compute_record
    from rwe.dossier._build import _inputs
    from rwe.dossier._views import render_view

    p, ev = _pg(loaded)
    (proto, data) = _inputs(p, ev)
    assert proto["role"] == "protocol" and data["role"] == "evaluation data"
    src = data["source"]
    assert data["sha256"] is None and data["path"] == src["url"] == p.data.source.url
    assert src["kind"] == "omop" and src["rows"] == 2630 and "FROM target t" in src["query"]
    assert src["rows_sha256"] == loaded["duckdb"][1].source_fingerprint["rows_sha256"]
    assert src["database"]["server"].startswith("PostgreSQL ")
    assert src["omop"]["cdm_version"] == "5.3" and src["omop"]["outcome"] == EUNOMIA_OUTCOME
    _, record, _ = compute_record("provenance", p, ev)
    (f,) = record["files"]
    assert f["protocol_path"] == p.data.source.url and f["file"] == src["url"]
    assert f["rows_sha256"] == src["rows_sha256"] and f["database"]["database"] == "eunomia"
    files = render_view("provenance", "files", record, 10, protocol=p)
    assert f"<code>{src['rows_sha256']}</code> (of the rows read)" in files
    head = render_view("provenance", "protocol", record, 10, protocol=p)
    assert f"{p.data.source.url} (omop)" in head and "cohort 1, outcome 3 within days 1-365" \
        in head
    text = json.dumps([data, record], default=str) + files + head
    assert postgres_server.password not in text
