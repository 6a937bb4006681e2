"""Synthetic demo scenario: a lung-nodule malignancy CADx score used at four US sites.

Everything is simulated (no real patient data). The generator builds in four known effects
(under-representation, a subgroup sensitivity gap, calibration drift after a scanner change and a
model update with a trade-off) so analyses and tests can check that rwe finds them. The data card
is ``datasets/demo/README.md``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import rwe
from rwe._validation import check_int
from rwe.data import file_sha256  # re-exported: one file hash for data and demo cards

__all__ = [
    "DEMO_SEED",
    "DEMO_N_SCANS",
    "DEMO_N_TRAINING",
    "DEMO_EFFECTS",
    "DEMO_REFERENCE_SHARES",
    "DEMO_COLUMNS",
    "TRAINING_COLUMNS",
    "DemoData",
    "make_demo",
    "write_demo",
    "demo_path",
    "file_sha256",
]

DEMO_SEED = 20261123
DEMO_N_SCANS = 100_000
DEMO_N_TRAINING = 20_000
_ROW_GROUP_SIZE = 65_536

SITES = ("S1", "S2", "S3", "S4")
RACES = (
    "White",
    "Black or African American",
    "Asian",
    "American Indian or Alaska Native",
    "Native Hawaiian or Other Pacific Islander",
    "Multiracial/Other",
)
ETHNICITIES = ("Hispanic or Latino", "Not Hispanic or Latino")
SMOKING = ("never", "former", "current")

#: Reference (target) shares used in the data card: rounded 2020 US Census shares (all ages,
#: race alone; "Multiracial/Other" = Some Other Race alone + Two or More Races).
DEMO_REFERENCE_SHARES: dict[str, dict[str, float]] = {
    "race": {
        "White": 0.616,
        "Black or African American": 0.124,
        "Asian": 0.060,
        "American Indian or Alaska Native": 0.011,
        "Native Hawaiian or Other Pacific Islander": 0.002,
        "Multiracial/Other": 0.186,
    },
    "ethnicity": {"Hispanic or Latino": 0.187, "Not Hispanic or Latino": 0.813},
    "sex": {"F": 0.508, "M": 0.492},
}

# --- cohort design ---------------------------------------------------------------------------
_SITE_P = np.array([0.30, 0.25, 0.25, 0.20])
# race distribution per site (rows: S1..S4, columns: RACES)
_RACE_P = np.array([
    [0.820, 0.050, 0.080, 0.003, 0.001, 0.046],
    [0.740, 0.130, 0.050, 0.003, 0.001, 0.076],
    [0.800, 0.050, 0.110, 0.003, 0.003, 0.034],
    [0.840, 0.030, 0.080, 0.008, 0.002, 0.040],
])
# P(Hispanic or Latino | race)
_HISP_GIVEN_RACE = np.array([0.06, 0.03, 0.01, 0.20, 0.05, 0.60])
_SCANS_PER_PATIENT_P = np.array([0.72, 0.20, 0.08])  # 1, 2 or 3 scans
_START = np.datetime64("2024-01-01T00:00", "m")
_N_DAYS = 731  # 2024-01-01 .. 2025-12-31 (2024 is a leap year)
_DRIFT_START = np.datetime64("2025-03-01T00:00", "m")

# vendor mix per site before the change: columns Siemens, GE, Philips, Canon
VENDORS = ("Siemens", "GE", "Philips", "Canon")
_VENDOR_P = np.array([
    [0.70, 0.30, 0.00, 0.00],
    [0.00, 0.85, 0.15, 0.00],
    [0.00, 0.00, 1.00, 0.00],  # S3: Philips, replaced by Canon from 2025-03-01
    [0.50, 0.50, 0.00, 0.00],
])

def expit(x):
    """scipy.special.expit, imported on first use: checking that the demo files exist (every
    dossier build does) must not load scipy."""
    from scipy.special import expit as _expit

    return _expit(x)


def logit(p):
    """scipy.special.logit, imported on first use."""
    from scipy.special import logit as _logit

    return _logit(p)


# risk model (true logit) -----------------------------------------------------------------------
_B0 = -5.6
_B_AGE_PER_10Y = 0.30
_B_FORMER, _B_CURRENT = 0.35, 0.60
_B_PACK_YEAR = 0.004
_B_LOG_SIZE = 4.5  # per log(size / 8 mm)
_SD_COMMON, _SD_V10, _SD_V11, _SD_HIDDEN, _SD_PATIENT = 1.7, 1.10, 1.15, 0.50, 0.40

#: Built-in effects with their exact parameters (see datasets/demo/README.md).
DEMO_EFFECTS: dict[str, dict] = {
    "threshold": 0.3,  # protocol threshold of the brief; 0.15 gives Se 0.82 vs 0.64 (card)
    "under_representation": {
        "reference": "DEMO_REFERENCE_SHARES",
        "race": {"White": 0.799, "Black or African American": 0.066, "Asian": 0.080,
                 "American Indian or Alaska Native": 0.004,
                 "Native Hawaiian or Other Pacific Islander": 0.0017, "Multiracial/Other": 0.049},
        "ethnicity": {"Hispanic or Latino": 0.078},
        "sex": {"F": 0.50},
    },
    "subgroup_sensitivity_gap": {
        "attribute": "race", "group": "Black or African American", "version": "v1.0",
        "logit_shift": -0.8, "extra_logit_noise_sd": 0.8,
    },
    "calibration_drift": {
        "site": "S3", "from": "2025-03-01", "vendor_before": "Philips", "vendor_after": "Canon",
        "logit_shift": 0.8, "versions": ["v1.0", "v1.1"],
    },
    "update_tradeoff": {
        "better": {"attribute": "race", "group": "Black or African American", "version": "v1.1",
                   "logit_shift": -0.15, "extra_logit_noise_sd": 0.2},
        "worse": {"subgroup": "age >= 80", "version": "v1.1",
                  "mechanism": "v1.1 loses its version-specific image signal (sd 1.15); "
                               "scores stay calibrated"},
    },
}

DEMO_COLUMNS = (
    "scan_id", "patient_id", "scan_date", "site", "scanner_vendor", "age", "sex", "race",
    "ethnicity", "smoking_status", "pack_years", "nodule_size_mm", "malignant", "score_v1_0",
    "score_v1_1",
)
TRAINING_COLUMNS = (
    "age", "sex", "race", "ethnicity", "smoking_status", "pack_years", "nodule_size_mm",
    "scanner_vendor", "malignant", "score_v1_0",
)

_GH_X, _GH_W = np.polynomial.hermite.hermgauss(40)


@dataclass(frozen=True)
class DemoData:
    """The demo scenario: deployment scans and the training-population snapshot.

    Attributes
    ----------
    scans : pandas.DataFrame
        One row per CT scan at the four US sites (columns ``DEMO_COLUMNS``).
    training : pandas.DataFrame
        Individual rows of the (East Asian) training population (columns ``TRAINING_COLUMNS``).
    seed : int
        Seed passed to :func:`numpy.random.default_rng`.
    """

    scans: pd.DataFrame
    training: pd.DataFrame
    seed: int


def _calibrated(lin: np.ndarray, sd: float) -> np.ndarray:
    """E[expit(lin + R)], R ~ N(0, sd^2), by 40-point Gauss-Hermite quadrature."""
    grid = lin[:, None] + np.sqrt(2.0) * sd * _GH_X[None, :]
    return (expit(grid) @ _GH_W) / np.sqrt(np.pi)


def _draw_cat(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of ``probs`` (n, k) by the inverse CDF."""
    cum = np.cumsum(probs, axis=1)
    cum[:, -1] = 1.0
    u = rng.random(probs.shape[0])
    return (u[:, None] >= cum).sum(axis=1)


def _smoking(rng, female: np.ndarray, p_female, p_male) -> tuple[np.ndarray, np.ndarray]:
    probs = np.where(female[:, None], np.asarray(p_female), np.asarray(p_male))
    status = _draw_cat(rng, probs)
    n = len(status)
    py = np.where(status == 2, rng.lognormal(np.log(30.0), 0.6, n),
                  rng.lognormal(np.log(25.0), 0.6, n))
    py = np.where(status == 0, 0.0, np.round(np.clip(py, 1.0, 150.0) * 2) / 2)
    return status, py


def _clinical_logit(age, status, pack_years, size_mm) -> np.ndarray:
    return (_B0 + _B_AGE_PER_10Y * (age - 65) / 10.0
            + np.where(status == 2, _B_CURRENT, np.where(status == 1, _B_FORMER, 0.0))
            + _B_PACK_YEAR * pack_years + _B_LOG_SIZE * np.log(size_mm / 8.0))


def _scans(rng: np.random.Generator, n_scans: int) -> pd.DataFrame:
    # patients and their number of scans (clustering)
    k = rng.choice(3, size=n_scans, p=_SCANS_PER_PATIENT_P) + 1
    cum = np.cumsum(k)
    n_pat = int(np.searchsorted(cum, n_scans) + 1)
    k = k[:n_pat].copy()
    k[-1] -= int(cum[n_pat - 1] - n_scans)
    pat = np.repeat(np.arange(n_pat), k)

    # patient-level attributes
    site = rng.choice(4, size=n_pat, p=_SITE_P)
    female = rng.random(n_pat) < 0.50
    race = _draw_cat(rng, _RACE_P[site])
    hisp = rng.random(n_pat) < _HISP_GIVEN_RACE[race]
    age0 = np.clip(np.rint(rng.normal(66.0, 9.0, n_pat)), 40, 90).astype(np.int64)
    status, py = _smoking(rng, female, [0.30, 0.42, 0.28], [0.22, 0.46, 0.32])
    log_size0 = rng.normal(np.log(8.0), 0.55, n_pat)
    u = rng.normal(0.0, _SD_PATIENT, n_pat)
    eth_missing = rng.random(n_pat) < 0.03
    smk_missing = rng.random(n_pat) < np.where(site == 1, 0.12, 0.02)  # S2 records it less

    # scan-level draws
    minutes = (rng.integers(0, _N_DAYS, n_scans) * 1440
               + rng.integers(7 * 60, 19 * 60, n_scans))
    order = np.lexsort((minutes, pat))  # within patient: chronological
    minutes = minutes[order]
    first = np.repeat(minutes[np.r_[0, np.cumsum(k)[:-1]]], k)
    years_since = (minutes - first) // (1440 * 365)
    when = _START + minutes.astype("timedelta64[m]")
    s = site[pat]
    age = np.minimum(age0[pat] + years_since, 90)
    size = np.round(np.clip(np.exp(log_size0[pat] + rng.normal(0.0, 0.10, n_scans)), 3.0,
                            40.0), 1)
    vend = _draw_cat(rng, _VENDOR_P[s])
    drift = (s == 2) & (when >= _DRIFT_START)
    vend = np.where(drift, 3, vend)

    # outcome and scores
    wc = rng.normal(0.0, _SD_COMMON, n_scans)
    w0 = rng.normal(0.0, _SD_V10, n_scans)
    w1 = rng.normal(0.0, _SD_V11, n_scans)
    wn = rng.normal(0.0, _SD_HIDDEN, n_scans)
    base = _clinical_logit(age, status[pat], py[pat], size) + wc
    eta = base + w0 + w1 + wn + u[pat]
    malignant = (rng.random(n_scans) < expit(eta)).astype(np.int64)
    sd_pu = np.sqrt(_SD_HIDDEN**2 + _SD_PATIENT**2)
    p10 = _calibrated(base + w0, np.sqrt(_SD_V11**2 + sd_pu**2))
    p11 = _calibrated(base + w1, np.sqrt(_SD_V10**2 + sd_pu**2))
    old = age >= 80
    p11 = np.where(old, _calibrated(base, np.sqrt(_SD_V10**2 + _SD_V11**2 + sd_pu**2)), p11)
    black = race[pat] == 1
    eff_b = DEMO_EFFECTS["subgroup_sensitivity_gap"]
    eff_u = DEMO_EFFECTS["update_tradeoff"]["better"]
    e10 = rng.normal(0.0, eff_b["extra_logit_noise_sd"], n_scans)
    e11 = rng.normal(0.0, eff_u["extra_logit_noise_sd"], n_scans)
    l10 = logit(p10) + np.where(black, eff_b["logit_shift"] + e10, 0.0)
    l11 = logit(p11) + np.where(black, eff_u["logit_shift"] + e11, 0.0)
    shift = DEMO_EFFECTS["calibration_drift"]["logit_shift"]
    l10 = l10 + np.where(drift, shift, 0.0)
    l11 = l11 + np.where(drift, shift, 0.0)
    eps = 1e-6
    score10 = np.clip(expit(l10), eps, 1 - eps)
    score11 = np.clip(expit(l11), eps, 1 - eps)

    # missingness (never in label or scores)
    eth = np.asarray(ETHNICITIES, dtype=object)[np.where(hisp, 0, 1)]
    eth = np.where(eth_missing, None, eth)[pat]
    smk = np.where(smk_missing, None, np.asarray(SMOKING, dtype=object)[status])[pat]
    pyv = np.where(smk_missing, np.nan, py)[pat]

    # rows in chronological order; ids follow that order
    chron = np.argsort(minutes, kind="stable")
    pcodes = pd.factorize(pat[chron])[0] + 1
    frame = pd.DataFrame({
        "scan_id": np.char.add("CT", np.char.zfill(np.arange(1, n_scans + 1).astype(str), 6)),
        "patient_id": np.char.add("P", np.char.zfill(pcodes.astype(str), 6)),
        "scan_date": when[chron].astype("datetime64[ns]"),
        "site": np.asarray(SITES, dtype=object)[s[chron]],
        "scanner_vendor": np.asarray(VENDORS, dtype=object)[vend[chron]],
        "age": age[chron].astype(np.int64),
        "sex": np.where(female, "F", "M").astype(object)[pat][chron],
        "race": np.asarray(RACES, dtype=object)[race[pat][chron]],
        "ethnicity": eth[chron],
        "smoking_status": smk[chron],
        "pack_years": pyv[chron],
        "nodule_size_mm": size[chron],
        "malignant": malignant[chron],
        "score_v1_0": score10[chron],
        "score_v1_1": score11[chron],
    })
    for col in ("scan_id", "patient_id"):
        frame[col] = frame[col].astype(object)
    return frame


def _training(rng: np.random.Generator, n: int) -> pd.DataFrame:
    female = rng.random(n) < 0.50
    race = _draw_cat(rng, np.broadcast_to([0.015, 0.002, 0.975, 0.0, 0.003, 0.005], (n, 6)))
    age = np.clip(np.rint(rng.normal(58.0, 9.0, n)), 40, 90).astype(np.int64)
    status, py = _smoking(rng, female, [0.85, 0.08, 0.07], [0.35, 0.35, 0.30])
    size = np.round(np.clip(np.exp(rng.normal(np.log(7.5), 0.55, n)), 3.0, 40.0), 1)
    vend = _draw_cat(rng, np.broadcast_to([0.25, 0.20, 0.15, 0.40], (n, 4)))
    wc = rng.normal(0.0, _SD_COMMON, n)
    w0 = rng.normal(0.0, _SD_V10, n)
    rest = rng.normal(0.0, np.sqrt(_SD_V11**2 + _SD_HIDDEN**2 + _SD_PATIENT**2), n)
    base = _clinical_logit(age, status, py, size) + wc
    malignant = (rng.random(n) < expit(base + w0 + rest)).astype(np.int64)
    score = np.clip(_calibrated(base + w0, np.sqrt(_SD_V11**2 + _SD_HIDDEN**2
                                                   + _SD_PATIENT**2)), 1e-6, 1 - 1e-6)
    return pd.DataFrame({
        "age": age,
        "sex": np.where(female, "F", "M").astype(object),
        "race": np.asarray(RACES, dtype=object)[race],
        "ethnicity": np.full(n, ETHNICITIES[1], dtype=object),
        "smoking_status": np.asarray(SMOKING, dtype=object)[status],
        "pack_years": py,
        "nodule_size_mm": size,
        "scanner_vendor": np.asarray(VENDORS, dtype=object)[vend],
        "malignant": malignant,
        "score_v1_0": score,
    })


def make_demo(*, n_scans: int = DEMO_N_SCANS, seed: int = DEMO_SEED,
              n_training: int = DEMO_N_TRAINING) -> DemoData:
    """Simulate the lung-nodule CADx demo scenario.

    Parameters
    ----------
    n_scans : int, default 100_000
        Number of deployment CT scans (rows of ``scans``).
    seed : int, default 20261123
        Seed for :func:`numpy.random.default_rng`; the same seed gives identical frames.
    n_training : int, default 20_000
        Rows of the training-population snapshot.

    Returns
    -------
    DemoData
        ``scans`` and ``training`` frames.

    Notes
    -----
    True malignancy follows a logistic model with a Gaussian latent image signal split into a
    part seen by both versions, parts seen by only one version, and a hidden part (plus a
    patient random effect). Each score is ``E[P(malignant) | what the version sees]``, computed
    by Gauss-Hermite quadrature, so it is calibrated by construction [1]_ except where an effect
    in ``DEMO_EFFECTS`` is applied. The scenario, effects and parameters are documented in
    ``datasets/demo/README.md``.

    References
    ----------
    .. [1] Van Calster B, McLernon DJ, van Smeden M, Wynants L, Steyerberg EW. Calibration: the
       Achilles heel of predictive analytics. BMC Medicine 2019;17:230.
    """
    n_scans = check_int(n_scans, "n_scans", minimum=1)
    n_training = check_int(n_training, "n_training", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    rng = np.random.default_rng(seed)
    scans = _scans(rng, n_scans)
    training = _training(rng, n_training)
    return DemoData(scans=scans, training=training, seed=seed)


def demo_path() -> Path:
    """Default directory of the demo files: ``<repo>/datasets/demo``."""
    return Path(rwe.__file__).resolve().parents[1] / "datasets" / "demo"


def _write_parquet(frame: pd.DataFrame, path: Path, metadata: dict[str, str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    # drop the pandas metadata (it records the pandas version) so bytes depend on data only
    table = table.replace_schema_metadata({k.encode(): v.encode() for k, v in metadata.items()})
    # write beside the target and rename: an interrupted run never leaves a truncated file
    # that would later pass for the demo
    tmp = path.with_name(f".{path.name}.partial")
    try:
        pq.write_table(table, tmp, row_group_size=_ROW_GROUP_SIZE, compression="zstd",
                       compression_level=3)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_demo(directory: str | Path | None = None, *, seed: int = DEMO_SEED,
               n_scans: int = DEMO_N_SCANS, n_training: int = DEMO_N_TRAINING
               ) -> dict[str, Path]:
    """Generate the demo and write ``demo.parquet`` and ``training_snapshot.parquet``.

    Parameters
    ----------
    directory : str or Path, optional
        Output directory (created if needed); default :func:`demo_path`.
    seed, n_scans, n_training : int
        Passed to :func:`make_demo`.

    Returns
    -------
    dict of str to Path
        ``{"scans": .../demo.parquet, "training": .../training_snapshot.parquet}``.

    Notes
    -----
    Files are written without the pandas index or pandas schema metadata, with a fixed row group
    size and zstd level 3, so the same seed gives byte-identical files (same sha256) for a
    given pyarrow version.
    """
    data = make_demo(n_scans=n_scans, seed=seed, n_training=n_training)
    out = Path(directory) if directory is not None else demo_path()
    out.mkdir(parents=True, exist_ok=True)
    meta = {"rwe.generator": "rwe.datasets.make_demo", "rwe.seed": str(seed),
            "rwe.n_scans": str(n_scans), "rwe.n_training": str(n_training)}
    paths = {"scans": out / "demo.parquet", "training": out / "training_snapshot.parquet"}
    _write_parquet(data.scans, paths["scans"], {**meta, "rwe.table": "scans"})
    _write_parquet(data.training, paths["training"], {**meta, "rwe.table": "training"})
    return paths


def ensure_demo(paths: Iterable[str | Path] | None = None) -> bool:
    """Write the bundled demo files (default seed and size) when one that is needed is missing.

    Parameters
    ----------
    paths : iterable of path-like, optional
        Files the caller is about to read; only those in :func:`demo_path` count (a protocol's
        ``data.path`` and ``data.reference_rows``). Default: both bundled demo files.

    Returns
    -------
    bool
        True when the files were generated.
    """
    d = demo_path().resolve()
    if paths is None:
        wanted = [d / "demo.parquet", d / "training_snapshot.parquet"]
    else:
        wanted = [Path(p).resolve() for p in paths]
    if any(p.parent == d and not p.exists() for p in wanted):
        write_demo()
        return True
    return False


