"""Offline loaders for real public clinical datasets shipped inside installed packages.

Each loader returns a tidy :class:`pandas.DataFrame` with a float ``time`` column, an integer
0/1 ``event`` column and readable categorical columns (codes replaced by labels). No network is
used: the data are files inside lifelines (core dependency) or scikit-survival (GPL-3, only in
the ``examples``/``dev`` extras, imported lazily). Data cards: ``datasets/public/README.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rwe._optional import import_optional
from rwe.exceptions import InvalidParameterError

__all__ = ["PublicDataset", "PUBLIC_DATASETS", "load_public", "MSG_UNKNOWN_DATASET"]

MSG_UNKNOWN_DATASET = "name={name!r} is not a known public dataset; valid: {valid}"


@dataclass(frozen=True)
class PublicDataset:
    """Registry entry of one real public dataset.

    Attributes
    ----------
    name : str
        Key for :func:`load_public`.
    package : str
        Installed package that ships the data.
    loader : str
        The package function that reads it.
    license : str
        License of the shipping package (and of the original source where known).
    citation : str
        Original publication or source.
    n_rows : int
        Number of rows returned.
    outcome : str
        Meaning of ``event`` and unit of ``time``.
    columns : dict of str to str
        Column name -> description of the returned frame.
    """

    name: str
    package: str
    loader: str
    license: str
    citation: str
    n_rows: int
    outcome: str
    columns: dict[str, str] = field(default_factory=dict)
    _load: Callable[[], pd.DataFrame] | None = field(default=None, repr=False, compare=False)

    def load(self) -> pd.DataFrame:
        """Load the dataset (offline)."""
        if self._load is None:
            raise NotImplementedError(f"dataset {self.name!r} has no loader")
        return self._load()


def _sksurv():
    return import_optional("sksurv.datasets", extra="examples")


def _merge_sksurv(X: pd.DataFrame, y: np.ndarray, event: str, time: str) -> pd.DataFrame:
    out = X.reset_index(drop=True).copy()
    out["time"] = np.asarray(y[time], dtype=np.float64)
    out["event"] = np.asarray(y[event], dtype=np.int64)
    return out


def _relabel(s: pd.Series, mapping: dict[str, str]) -> pd.Series:
    return pd.Categorical(s.astype(str).map(mapping), categories=list(dict.fromkeys(
        mapping.values())))


def _kidney_transplant() -> pd.DataFrame:
    from lifelines.datasets import load_kidney_transplant

    df = load_kidney_transplant()
    black = (df["black_male"] == 1) | (df["black_female"] == 1)
    male = (df["black_male"] == 1) | (df["white_male"] == 1)
    return pd.DataFrame({
        "time": df["time"].to_numpy(dtype=np.float64),
        "event": df["death"].to_numpy(dtype=np.int64),
        "age": df["age"].to_numpy(dtype=np.int64),
        "sex": pd.Categorical(np.where(male, "M", "F"), categories=["F", "M"]),
        "race": pd.Categorical(np.where(black, "Black", "White"), categories=["White", "Black"]),
    })


def _rossi() -> pd.DataFrame:
    from lifelines.datasets import load_rossi

    df = load_rossi()
    out = pd.DataFrame({
        "time": df["week"].to_numpy(dtype=np.float64),
        "event": df["arrest"].to_numpy(dtype=np.int64),
        "age": df["age"].to_numpy(dtype=np.int64),
        "race": pd.Categorical(np.where(df["race"] == 1, "Black", "Other"),
                               categories=["Other", "Black"]),
    })
    for col in ("fin", "wexp", "mar", "paro"):
        out[col] = pd.Categorical(np.where(df[col] == 1, "yes", "no"), categories=["no", "yes"])
    out["prio"] = df["prio"].to_numpy(dtype=np.int64)
    return out


def _lung() -> pd.DataFrame:
    from lifelines.datasets import load_lung

    df = load_lung()
    out = df.rename(columns={"ph.ecog": "ph_ecog", "ph.karno": "ph_karno",
                             "pat.karno": "pat_karno", "meal.cal": "meal_cal",
                             "wt.loss": "wt_loss"}).drop(columns=["status"])
    out["sex"] = pd.Categorical(np.where(df["sex"] == 1, "M", "F"), categories=["F", "M"])
    out["time"] = df["time"].to_numpy(dtype=np.float64)
    out["event"] = df["status"].to_numpy(dtype=np.int64)
    return out.reset_index(drop=True)


def _flchain() -> pd.DataFrame:
    X, y = _sksurv().load_flchain()
    out = _merge_sksurv(X, y, "death", "futime")
    return out.rename(columns={"flc.grp": "flc_grp", "sample.yr": "sample_yr"})


def _whas500() -> pd.DataFrame:
    X, y = _sksurv().load_whas500()
    out = _merge_sksurv(X, y, "fstat", "lenfol")
    out["gender"] = _relabel(out["gender"], {"0": "M", "1": "F"})
    return out


def _gbsg2() -> pd.DataFrame:
    X, y = _sksurv().load_gbsg2()
    return _merge_sksurv(X, y, "cens", "time")


def _veterans() -> pd.DataFrame:
    X, y = _sksurv().load_veterans_lung_cancer()
    return _merge_sksurv(X, y, "Status", "Survival_in_days")


def _aids() -> pd.DataFrame:
    X, y = _sksurv().load_aids(endpoint="aids")
    out = _merge_sksurv(X, y, "censor", "time")
    out["sex"] = _relabel(out["sex"], {"1": "M", "2": "F"})
    out["raceth"] = _relabel(out["raceth"], {
        "1": "White Non-Hispanic", "2": "Black Non-Hispanic", "3": "Hispanic",
        "4": "Asian, Pacific Islander", "5": "American Indian, Alaskan Native"})
    out["ivdrug"] = _relabel(out["ivdrug"], {"1": "never", "2": "currently", "3": "previously"})
    return out


_SURV = "time to event"
PUBLIC_DATASETS: dict[str, PublicDataset] = {d.name: d for d in (
    PublicDataset(
        "kidney_transplant", "lifelines", "lifelines.datasets.load_kidney_transplant",
        "lifelines: MIT; data from the KMsurv R package (GPL-3)",
        "Klein JP, Moeschberger ML. Survival Analysis: Techniques for Censored and Truncated "
        "Data, 2nd ed. Springer 2003, section 1.7 (Ohio State University transplants "
        "1982-1992).",
        863, "event = death (1) or censored (0); time = days after transplant",
        {"time": "days", "event": "death 0/1", "age": "age at transplant (years)",
         "sex": "F/M", "race": "White/Black"}, _kidney_transplant),
    PublicDataset(
        "rossi", "lifelines", "lifelines.datasets.load_rossi", "lifelines: MIT",
        "Rossi PH, Berk RA, Lenihan KJ. Money, Work and Crime: Some Experimental Results. "
        "Academic Press 1980.",
        432, "event = re-arrest within one year; time = weeks after release",
        {"time": "weeks", "event": "arrest 0/1", "age": "years", "race": "Black/Other",
         "fin": "financial aid no/yes", "wexp": "full-time work experience no/yes",
         "mar": "married no/yes", "paro": "released on parole no/yes",
         "prio": "number of prior convictions"}, _rossi),
    PublicDataset(
        "lung", "lifelines", "lifelines.datasets.load_lung",
        "lifelines: MIT; data from the R survival package (LGPL-2+)",
        "Loprinzi CL et al. Prospective evaluation of prognostic variables from "
        "patient-completed questionnaires. J Clin Oncol 1994;12(3):601-607 (NCCTG lung).",
        228, "event = death; time = days",
        {"time": "days", "event": "death 0/1", "inst": "institution code", "age": "years",
         "sex": "F/M", "ph_ecog": "ECOG score (physician)", "ph_karno": "Karnofsky (physician)",
         "pat_karno": "Karnofsky (patient)", "meal_cal": "calories at meals",
         "wt_loss": "weight loss in last six months (lb)"}, _lung),
    PublicDataset(
        "flchain", "scikit-survival", "sksurv.datasets.load_flchain",
        "scikit-survival: GPL-3; data from the R survival package (LGPL-2+)",
        "Dispenzieri A et al. Use of nonclonal serum immunoglobulin free light chains to "
        "predict overall survival in the general population. Mayo Clin Proc "
        "2012;87(6):517-523.",
        7874, "event = death; time = days of follow-up (futime)",
        {"age": "years", "sex": "F/M", "sample_yr": "calendar year of the blood sample "
         "(1995-2003)", "kappa": "serum free light chain kappa", "lambda": "FLC lambda",
         "flc_grp": "FLC group 1-10", "creatinine": "serum creatinine", "mgus": "MGUS no/yes",
         "chapter": "ICD chapter of the cause of death", "time": "days", "event": "death 0/1"},
        _flchain),
    PublicDataset(
        "whas500", "scikit-survival", "sksurv.datasets.load_whas500",
        "scikit-survival: GPL-3",
        "Hosmer DW, Lemeshow S, May S. Applied Survival Analysis, 2nd ed. Wiley 2008 "
        "(Worcester Heart Attack Study).",
        500, "event = death (fstat); time = days of follow-up (lenfol)",
        {"age": "years", "gender": "F/M", "bmi": "kg/m^2", "hr": "heart rate",
         "sysbp": "systolic BP", "diasbp": "diastolic BP", "los": "length of stay (days)",
         "afb": "atrial fibrillation 0/1", "av3": "complete heart block 0/1",
         "chf": "congestive heart failure 0/1", "cvd": "cardiovascular disease history 0/1",
         "miord": "MI order 0 first/1 recurrent", "mitype": "MI type 0 non-Q/1 Q-wave",
         "sho": "cardiogenic shock 0/1", "time": "days", "event": "death 0/1"}, _whas500),
    PublicDataset(
        "gbsg2", "scikit-survival", "sksurv.datasets.load_gbsg2", "scikit-survival: GPL-3",
        "Schumacher M et al. Randomized 2 x 2 trial evaluating hormonal treatment and the "
        "duration of chemotherapy in node-positive breast cancer patients. J Clin Oncol "
        "1994;12(10):2086-2093.",
        686, "event = recurrence-free survival event (cens); time = days",
        {"age": "years", "horTh": "hormonal therapy no/yes", "menostat": "Pre/Post",
         "tsize": "tumour size (mm)", "tgrade": "I/II/III", "pnodes": "positive nodes",
         "progrec": "progesterone receptor (fmol)", "estrec": "estrogen receptor (fmol)",
         "time": "days", "event": "event 0/1"}, _gbsg2),
    PublicDataset(
        "veterans_lung_cancer", "scikit-survival", "sksurv.datasets.load_veterans_lung_cancer",
        "scikit-survival: GPL-3",
        "Kalbfleisch JD, Prentice RL. The Statistical Analysis of Failure Time Data. Wiley "
        "1980 (Veterans' Administration lung cancer trial).",
        137, "event = death (Status); time = days (Survival_in_days)",
        {"Age_in_years": "years", "Celltype": "adeno/large/smallcell/squamous",
         "Karnofsky_score": "0-100", "Months_from_Diagnosis": "months",
         "Prior_therapy": "no/yes", "Treatment": "standard/test", "time": "days",
         "event": "death 0/1"}, _veterans),
    PublicDataset(
        "aids", "scikit-survival", "sksurv.datasets.load_aids", "scikit-survival: GPL-3",
        "Hammer SM et al. A controlled trial of two nucleoside analogues plus indinavir in "
        "persons with HIV infection and CD4 cell counts of 200 per cubic millimeter or less "
        "(ACTG 320). N Engl J Med 1997;337:725-733; Hosmer, Lemeshow & May 2008.",
        1151, "event = AIDS diagnosis or death (censor); time = days",
        {"age": "years", "sex": "F/M", "raceth": "race/ethnicity (5 labels)",
         "ivdrug": "IV drug use never/currently/previously", "hemophil": "hemophiliac 0/1",
         "karnof": "Karnofsky 70-100", "cd4": "baseline CD4 count",
         "priorzdv": "months of prior ZDV", "tx": "treatment 0 control/1 IDV",
         "txgrp": "treatment group 1-4", "strat2": "CD4 stratum 0 (<=50)/1 (>50)",
         "time": "days", "event": "AIDS or death 0/1"}, _aids),
)}


def load_public(name: str) -> pd.DataFrame:
    """Load a real public dataset shipped inside an installed package (no network).

    Parameters
    ----------
    name : str
        A key of :data:`PUBLIC_DATASETS`.

    Returns
    -------
    pandas.DataFrame
        Tidy frame with ``time`` (float), ``event`` (int 0/1) and the columns listed in the
        registry entry, categorical codes replaced by readable labels.

    Raises
    ------
    InvalidParameterError
        If ``name`` is unknown.
    ImportError
        If the dataset needs scikit-survival and it is not installed
        (``pip install 'rwe[examples]'``).
    """
    try:
        spec = PUBLIC_DATASETS[name]
    except (KeyError, TypeError):
        raise InvalidParameterError(MSG_UNKNOWN_DATASET.format(
            name=name, valid=", ".join(sorted(PUBLIC_DATASETS)))) from None
    return spec.load()
