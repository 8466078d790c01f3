"""A generator of an adult-census-like sample (`adult.csv`) with the classic column names and a learnable signal,
for examples and tests that must not download anything."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from tiers.dispatch.paths import Path  # a pathlib.Path with ls(), as untar_data returns

__all__ = ["make_adult_sample"]

_EDU = ["Preschool", "1st-4th", "5th-6th", "7th-8th", "9th", "10th", "11th", "12th", "HS-grad", "Some-college",
        "Assoc-voc", "Assoc-acdm", "Bachelors", "Masters", "Prof-school", "Doctorate"]
_WORK = ["Private", "Self-emp-not-inc", "Self-emp-inc", "Federal-gov", "Local-gov", "State-gov", "Without-pay"]
_MARITAL = ["Married-civ-spouse", "Never-married", "Divorced", "Separated", "Widowed", "Married-spouse-absent"]
_OCC = ["Tech-support", "Craft-repair", "Other-service", "Sales", "Exec-managerial", "Prof-specialty",
        "Handlers-cleaners", "Machine-op-inspct", "Adm-clerical", "Farming-fishing", "Transport-moving"]
_REL = ["Husband", "Wife", "Own-child", "Not-in-family", "Other-relative", "Unmarried"]
_RACE = ["White", "Black", "Asian-Pac-Islander", "Amer-Indian-Eskimo", "Other"]
_COUNTRY = ["United-States", "Mexico", "Philippines", "Germany", "Canada", "India", "England", "China"]


def make_adult_sample(path: str | os.PathLike[str], n: int = 2000, seed: int = 0, nan_frac: float = 0.02) -> Path:
    """Write `path/adult.csv`: `n` rows with the adult census columns (age, workclass, fnlwgt, education,
    education-num, marital-status, occupation, relationship, race, sex, capital-gain, capital-loss, hours-per-week,
    native-country, salary), where `salary` ('>=50k' or '<50k') depends on education, marital status, occupation,
    age, hours and capital gain, and about `nan_frac` of education-num, occupation and workclass are missing.
    Returns the file's path.

    >>> import tempfile
    >>> p = make_adult_sample(tempfile.mkdtemp(), n=50)
    >>> pd.read_csv(p).shape
    (50, 15)
    """
    if n < 10:
        raise ValueError(f"make_adult_sample: n={n} is too small; ask for at least 10 rows.")
    rng = np.random.default_rng(seed)
    edu_i = rng.integers(0, len(_EDU), n)
    marital = rng.choice(_MARITAL, n, p=[0.45, 0.3, 0.13, 0.04, 0.04, 0.04])
    occ = rng.choice(_OCC, n)
    age = rng.integers(17, 80, n)
    hours = np.clip(rng.normal(40, 12, n).round(), 1, 99).astype(int)
    gain = np.where(rng.random(n) < 0.08, rng.integers(1000, 20000, n), 0)
    rel = np.where(marital == "Married-civ-spouse", rng.choice(["Husband", "Wife"], n, p=[0.85, 0.15]),
                   rng.choice(_REL[2:], n))
    sex = np.where(rel == "Husband", "Male", np.where(rel == "Wife", "Female", rng.choice(["Male", "Female"], n)))
    logit = (0.45 * (edu_i - 9) + 1.6 * (marital == "Married-civ-spouse")
             + 0.9 * np.isin(occ, ["Exec-managerial", "Prof-specialty", "Tech-support"])
             + 0.04 * (np.minimum(age, 60) - 38) + 0.04 * (hours - 40) + 2.5 * (gain > 5000) - 1.6)
    salary = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), ">=50k", "<50k")
    df = pd.DataFrame({
        "age": age, "workclass": rng.choice(_WORK, n, p=[0.7, 0.08, 0.04, 0.04, 0.06, 0.06, 0.02]),
        "fnlwgt": rng.integers(20000, 1_000_000, n), "education": np.array(_EDU)[edu_i],
        "education-num": (edu_i + 1).astype(float), "marital-status": marital, "occupation": occ,
        "relationship": rel, "race": rng.choice(_RACE, n, p=[0.8, 0.1, 0.05, 0.03, 0.02]), "sex": sex,
        "capital-gain": gain, "capital-loss": np.where(rng.random(n) < 0.04, rng.integers(100, 3000, n), 0),
        "hours-per-week": hours, "native-country": rng.choice(_COUNTRY, n, p=[0.86, 0.04, 0.02, 0.02, 0.02, 0.02,
                                                                              0.01, 0.01]),
        "salary": salary,
    })
    for c in ("education-num", "occupation", "workclass"):
        df[c] = df[c].astype(object)
        df.loc[rng.random(n) < nan_frac, c] = np.nan
    df["education-num"] = df["education-num"].astype(float)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    out = path / "adult.csv"
    df.to_csv(out, index=False)
    return out
