"""Audit: learners built the way fastai users build them export and load back with the SAFE `load_learner` (no
trusted=True): training callbacks in the Learner's cbs, losses with arguments, optimizer functions (partials, ranger,
a wrapped torch optimizer), partial metrics. Each restored learner predicts what the original predicts."""

from functools import partial

import numpy as np
import pandas as pd
import pytest
import torch

from tiers.tabular.all import Normalize, TabularDataLoaders, load_learner, tabular_learner
from tiers.train.all import (
    SGD,
    Adam,
    CrossEntropyLossFlat,
    EarlyStoppingCallback,
    FocalLossFlat,
    GradientAccumulation,
    GradientClip,
    LabelSmoothingCrossEntropyFlat,
    MixUp,
    OptimWrapper,
    ReduceLROnPlateau,
    SaveModelCallback,
    TerminateOnNaNCallback,
    accuracy,
    error_rate,
    ranger,
    top_k_accuracy,
)

VARIANTS = {
    "training_callbacks": lambda: dict(cbs=[SaveModelCallback(), MixUp(), GradientAccumulation(), GradientClip(),
                                            EarlyStoppingCallback(), ReduceLROnPlateau(), TerminateOnNaNCallback()]),
    "label_smoothing": lambda: dict(loss_func=LabelSmoothingCrossEntropyFlat()),
    "focal": lambda: dict(loss_func=FocalLossFlat(gamma=2)),
    "weighted_ce": lambda: dict(loss_func=CrossEntropyLossFlat(weight=torch.tensor([1.0, 2.0]))),
    "ranger": lambda: dict(opt_func=ranger),
    "adam_partial": lambda: dict(opt_func=partial(Adam, sqr_mom=0.99, eps=1e-5)),
    "sgd": lambda: dict(opt_func=SGD),
    "torch_adamw": lambda: dict(opt_func=partial(OptimWrapper, opt=torch.optim.AdamW)),
    "metrics": lambda: dict(metrics=[accuracy, error_rate, partial(top_k_accuracy, k=1)]),
}


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=80), "b": rng.normal(size=80)})
    df["y"] = np.where(df.a + df.b > 0, "p", "q")
    return df


@pytest.mark.parametrize("name", list(VARIANTS))
def test_safe_load_of_a_typical_learner(name, frame, tmp_path):
    dls = TabularDataLoaders.from_df(frame, tmp_path, procs=[Normalize], cont_names=["a", "b"], y_names="y", bs=16)
    learn = tabular_learner(dls, **VARIANTS[name]())
    learn.fit(1, 1e-2)
    restored = load_learner(learn.export())
    want = learn.predict(frame.iloc[3])
    got = restored.predict(frame.iloc[3])
    assert got[0]["y"] == want[0]["y"] and torch.allclose(got[2], want[2], atol=1e-6)
