"""The synthetic demo scenario: determinism, schema, and every built-in effect (data card)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.special import logit
from sklearn.metrics import roc_auc_score
from statsmodels.stats.proportion import proportion_confint

from rwe.datasets import (
    DEMO_COLUMNS,
    DEMO_EFFECTS,
    DEMO_REFERENCE_SHARES,
    DEMO_SEED,
    TRAINING_COLUMNS,
    demo_path,
    file_sha256,
    make_demo,
    write_demo,
)
from rwe.exceptions import InvalidParameterError

BLACK = "Black or African American"
THRESHOLD = DEMO_EFFECTS["threshold"]
CARD = Path(__file__).resolve().parents[2] / "datasets" / "demo" / "README.md"


@pytest.fixture(scope="module")
def demo():
    return make_demo()


@pytest.fixture(scope="module")
def scans(demo):
    return demo.scans


def _sens(df: pd.DataFrame, col: str) -> tuple[float, int, int]:
    pos = df["malignant"].to_numpy() == 1
    k = int((df[col].to_numpy()[pos] >= THRESHOLD).sum())
    return k / pos.sum(), k, int(pos.sum())


def _auc(df: pd.DataFrame, col: str) -> float:
    return roc_auc_score(df["malignant"].to_numpy(), df[col].to_numpy())


# --- determinism ------------------------------------------------------------------------------

def test_same_seed_same_bytes_different_seed_different(tmp_path):
    a = write_demo(tmp_path / "a", n_scans=5000, n_training=1000)
    b = write_demo(tmp_path / "b", n_scans=5000, n_training=1000)
    c = write_demo(tmp_path / "c", n_scans=5000, n_training=1000, seed=DEMO_SEED + 1)
    assert set(a) == {"scans", "training"}
    assert a["scans"].name == "demo.parquet" and a["training"].name == "training_snapshot.parquet"
    for key in a:
        assert file_sha256(a[key]) == file_sha256(b[key])
        assert file_sha256(a[key]) != file_sha256(c[key])


def test_written_file_roundtrips_to_make_demo(tmp_path, demo):
    paths = write_demo(tmp_path)
    back = pd.read_parquet(paths["scans"])
    pd.testing.assert_frame_equal(back, demo.scans, check_dtype=False)
    assert back["scan_date"].dtype.kind == "M" and back["scan_date"].dt.tz is None
    pd.testing.assert_frame_equal(pd.read_parquet(paths["training"]), demo.training,
                                  check_dtype=False)


def test_default_sha256_matches_data_card(tmp_path):
    """The sha256 pasted in the data card is what write_demo produces (same pyarrow)."""
    import pyarrow

    card = CARD.read_text()
    m = re.search(r"pyarrow (\d+\.\d+\.\d+)", card)
    if m is None or m.group(1) != pyarrow.__version__:
        pytest.skip("data card hashes were computed with another pyarrow version")
    paths = write_demo(tmp_path)
    assert file_sha256(paths["scans"]) in card
    assert file_sha256(paths["training"]) in card


def test_demo_path_is_repo_datasets_demo():
    assert demo_path() == CARD.parent


def test_invalid_parameters():
    with pytest.raises(InvalidParameterError, match="n_scans must be an integer not less than 1"):
        make_demo(n_scans=0)
    with pytest.raises(InvalidParameterError, match="seed must be an integer"):
        make_demo(seed=1.5)


# --- schema -----------------------------------------------------------------------------------

def test_columns_dtypes_and_ranges(scans):
    assert tuple(scans.columns) == DEMO_COLUMNS
    assert len(scans) == 100_000
    assert scans["scan_id"].is_unique
    assert scans["scan_date"].dtype == np.dtype("datetime64[ns]")
    assert scans["scan_date"].min() >= pd.Timestamp("2024-01-01")
    assert scans["scan_date"].max() < pd.Timestamp("2026-01-01")
    assert scans["scan_date"].is_monotonic_increasing
    assert scans["age"].dtype == np.int64 and scans["age"].between(40, 90).all()
    assert set(scans["site"]) == {"S1", "S2", "S3", "S4"}
    assert set(scans["scanner_vendor"]) == {"Siemens", "GE", "Philips", "Canon"}
    assert set(scans["sex"]) == {"F", "M"}
    assert set(scans["race"]) == set(DEMO_REFERENCE_SHARES["race"])
    assert set(scans["ethnicity"].dropna()) == set(DEMO_REFERENCE_SHARES["ethnicity"])
    assert set(scans["smoking_status"].dropna()) == {"never", "former", "current"}
    assert scans["nodule_size_mm"].between(3, 40).all()
    assert set(np.unique(scans["malignant"])) == {0, 1}
    for col in ("malignant", "score_v1_0", "score_v1_1"):
        assert scans[col].notna().all()
    for col in ("score_v1_0", "score_v1_1"):
        s = scans[col].to_numpy()
        assert ((s > 0) & (s < 1)).all()
    assert 0.05 <= scans["malignant"].mean() <= 0.12


def test_patient_clustering(scans):
    per = scans.groupby("patient_id").size()
    assert per.max() == 3 and (per >= 2).sum() > 10_000
    # patient-level attributes are constant within a patient
    for col in ("site", "sex", "race"):
        assert (scans.groupby("patient_id")[col].nunique() == 1).all()


def test_missingness_is_documented_and_confined(scans):
    eth_missing = scans["ethnicity"].isna().mean()
    assert 0.02 < eth_missing < 0.04
    smk = scans["smoking_status"].isna().groupby(scans["site"]).mean()
    assert smk["S2"] > 0.09 and smk.drop("S2").max() < 0.03
    np.testing.assert_array_equal(scans["pack_years"].isna(), scans["smoking_status"].isna())
    assert (scans.loc[scans["smoking_status"] == "never", "pack_years"] == 0).all()
    assert (scans.loc[scans["smoking_status"].isin(["former", "current"]), "pack_years"]
            >= 1).all()
    other = [c for c in DEMO_COLUMNS if c not in ("ethnicity", "smoking_status", "pack_years")]
    assert not scans[other].isna().any().any()


def test_loads_as_evaluation_set(scans):
    from rwe.data import ColumnRoles, EvaluationSet

    roles = ColumnRoles(id="scan_id", patient_id="patient_id",
                        scores={"v1.0": "score_v1_0", "v1.1": "score_v1_1"}, label="malignant",
                        timestamp="scan_date", site="site", equipment="scanner_vendor",
                        attributes=("sex", "race", "ethnicity", "smoking_status"),
                        features=("age", "pack_years", "nodule_size_mm"))
    ev = EvaluationSet.from_frame(scans, roles)
    assert len(ev) == len(scans)
    assert ev.y_true.sum() == scans["malignant"].sum()


# --- effect a: under-representation -----------------------------------------------------------

def test_under_representation_vs_reference(scans):
    ppr = {}
    for attr in ("race", "ethnicity", "sex"):
        share = scans[attr].value_counts(normalize=True)  # among non-missing
        for group, ref in DEMO_REFERENCE_SHARES[attr].items():
            ppr[group] = share.get(group, 0.0) / ref
    assert ppr[BLACK] < 0.8
    assert ppr["Hispanic or Latino"] < 0.8
    assert ppr["Multiracial/Other"] < 0.8
    assert ppr["Asian"] > 1.2
    assert 0.8 <= ppr["F"] <= 1.2
    for group, share in DEMO_EFFECTS["under_representation"]["race"].items():
        assert abs(scans["race"].eq(group).mean() - share) < 0.005
    counts = scans["race"].value_counts()
    assert counts["Native Hawaiian or Other Pacific Islander"] > 50
    assert counts["American Indian or Alaska Native"] > 200


# --- effect b: subgroup sensitivity gap of v1.0 -----------------------------------------------

def test_v10_sensitivity_gap_in_black_patients(scans):
    black = scans["race"] == BLACK
    se_b, k_b, n_b = _sens(scans[black], "score_v1_0")
    se_o, k_o, n_o = _sens(scans[~black], "score_v1_0")
    assert se_o - se_b > 0.1
    hi_b = proportion_confint(k_b, n_b, alpha=0.05, method="wilson")[1]
    lo_o = proportion_confint(k_o, n_o, alpha=0.05, method="wilson")[0]
    assert hi_b < lo_o  # the 95% Wilson intervals separate
    # the gap is specific to the subgroup: other race groups with enough cases are not affected
    white = scans["race"] == "White"
    assert abs(_sens(scans[white], "score_v1_0")[0] - se_o) < 0.02


# --- effect c: calibration drift after the scanner change at S3 -------------------------------

def test_calibration_drift_at_s3_after_scanner_change(scans):
    s3 = scans["site"] == "S3"
    post = scans["scan_date"] >= pd.Timestamp(DEMO_EFFECTS["calibration_drift"]["from"])
    assert set(scans.loc[s3 & ~post, "scanner_vendor"]) == {"Philips"}
    assert set(scans.loc[s3 & post, "scanner_vendor"]) == {"Canon"}
    assert set(scans.loc[~s3, "scanner_vendor"]).isdisjoint({"Canon"})

    def e_minus_o(mask):
        d = scans[mask]
        return d["score_v1_0"].mean() - d["malignant"].mean(), d

    before, d_before = e_minus_o(s3 & ~post)
    after, d_after = e_minus_o(s3 & post)
    assert abs(before) < 0.01
    # clearly positive: beyond 4 binomial standard errors of the observed rate
    se = np.sqrt(d_after["malignant"].mean() * (1 - d_after["malignant"].mean()) / len(d_after))
    assert after > 0.03 and after > 4 * se
    # discrimination is unaffected by the shift
    assert abs(_auc(d_after, "score_v1_0") - _auc(d_before, "score_v1_0")) < 0.02
    # calibration-in-the-large on the logit scale recovers the +0.8 shift (slope fixed at 1)
    off = logit(d_after["score_v1_0"].to_numpy())
    fit = sm.GLM(d_after["malignant"].to_numpy(), np.ones((len(off), 1)),
                 family=sm.families.Binomial(), offset=off).fit()
    assert -1.0 < fit.params[0] < -0.6


def test_scores_calibrated_outside_the_effects(scans):
    post = scans["scan_date"] >= pd.Timestamp("2025-03-01")
    clean = ~((scans["site"] == "S3") & post) & (scans["race"] != BLACK)
    d = scans[clean]
    for col in ("score_v1_0", "score_v1_1"):
        x = sm.add_constant(logit(d[col].to_numpy()))
        fit = sm.GLM(d["malignant"].to_numpy(), x, family=sm.families.Binomial()).fit()
        assert 0.95 < fit.params[1] < 1.05
        assert abs(d[col].mean() - d["malignant"].mean()) < 0.01
        assert 0.88 < _auc(d, col) < 0.96


# --- effect d: the v1.1 update trade-off ------------------------------------------------------

def test_v11_recovers_sensitivity_in_black_patients(scans):
    black = scans[scans["race"] == BLACK]
    se10 = _sens(black, "score_v1_0")[0]
    se11 = _sens(black, "score_v1_1")[0]
    assert se11 - se10 > 0.1
    se11_other = _sens(scans[scans["race"] != BLACK], "score_v1_1")[0]
    assert se11_other - se11 < 0.08


def test_v11_worse_auroc_in_age_80_plus(scans):
    old = scans[scans["age"] >= 80]
    young = scans[scans["age"] < 80]
    diff_old = _auc(old, "score_v1_1") - _auc(old, "score_v1_0")
    diff_young = _auc(young, "score_v1_1") - _auc(young, "score_v1_0")
    assert -0.04 < diff_old < -0.012
    assert diff_young > 0.0


# --- training snapshot ------------------------------------------------------------------------

def test_training_snapshot(demo, scans):
    tr = demo.training
    assert tuple(tr.columns) == TRAINING_COLUMNS and len(tr) == 20_000
    assert not tr.isna().any().any()
    assert tr["race"].eq("Asian").mean() > 0.95
    # younger, more never-smoking women, different vendor mix: SMD (pooled SD) > 0.1
    a, b = scans["age"].to_numpy(float), tr["age"].to_numpy(float)
    smd = (a.mean() - b.mean()) / np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    assert smd > 0.5
    never_f_train = tr.loc[tr["sex"] == "F", "smoking_status"].eq("never").mean()
    never_f_cohort = scans.loc[scans["sex"] == "F", "smoking_status"].dropna().eq("never").mean()
    assert never_f_train > never_f_cohort + 0.4
    assert tr["scanner_vendor"].eq("Canon").mean() > 0.3
    assert abs(tr["score_v1_0"].mean() - tr["malignant"].mean()) < 0.01


def test_ensure_demo_ignores_files_outside_the_demo_directory(tmp_path):
    from rwe.datasets import ensure_demo

    assert ensure_demo([tmp_path / "missing.parquet"]) is False
    assert not (tmp_path / "missing.parquet").exists()


def test_interrupted_demo_write_leaves_no_file(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from rwe.datasets import write_demo

    def boom(table, where, **kw):
        with open(where, "wb") as fh:
            fh.write(b"PAR1 truncated")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", boom)
    with pytest.raises(OSError, match="disk full"):
        write_demo(tmp_path, n_scans=200, n_training=50)
    assert list(tmp_path.iterdir()) == []
