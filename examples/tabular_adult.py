"""Tabular classification (the paper's section 2.3) on a generated adult-census-like CSV.

    python examples/tabular_adult.py
"""

import tempfile

from tiers.tabular.all import (
                                  Categorify,
                                  FillMissing,
                                  Normalize,
                                  TabularDataLoaders,
                                  accuracy,
                                  tabular_learner,
)
from tiers.tabular.samples import make_adult_sample

csv = make_adult_sample(tempfile.mkdtemp())
dls = TabularDataLoaders.from_csv(csv, y_names="salary", procs=[Categorify, FillMissing, Normalize],
                                  cat_names=["workclass", "education", "marital-status", "occupation", "relationship"],
                                  cont_names=["age", "fnlwgt", "education-num"])
learn = tabular_learner(dls, metrics=accuracy)
learn.fit_one_cycle(3)
learn.show_results(max_n=5)
