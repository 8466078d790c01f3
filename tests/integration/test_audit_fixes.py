"""Audit regressions: each finding of the porting audit (AUDIT.md B1-B6) that was fixed, pinned by the repro that
showed it. Before the fixes: callback messages printed as a table row of single characters, valid_pct=0 was refused,
a 'yes'/'no' valid column failed with a message naming `_inner`, and ratings outside y_range, labels differing by a
space and index labels passed as valid_idx all went through silently."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from tiers.collab.all import CollabDataLoaders, collab_learner
from tiers.data.all import (
    CategoryBlock,
    ColSplitter,
    DataBlock,
    DataLoaders,
    IndexSplitter,
    RandomSplitter,
    TransformBlock,
)
from tiers.tabular.all import Normalize, TabularDataLoaders
from tiers.train.all import (
    CrossEntropyLossFlat,
    EarlyStoppingCallback,
    Learner,
    ReduceLROnPlateau,
    SaveModelCallback,
    accuracy,
)


def _cls_learner(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 4, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    dls = DataLoaders.from_dsets(TensorDataset(x[:160], y[:160]), TensorDataset(x[160:], y[160:]), bs=16)
    torch.manual_seed(0)
    return Learner(dls, nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), loss_func=CrossEntropyLossFlat(),
                   metrics=accuracy, path=tmp_path)


def test_b1_callback_messages_print_as_lines_not_table_rows(tmp_path, capsys):
    learn = _cls_learner(tmp_path)
    learn.fit(3, 1e-2, cbs=SaveModelCallback(monitor="accuracy"))
    learn.fit(6, 1e-7, cbs=[EarlyStoppingCallback(monitor="valid_loss", min_delta=0.1, patience=1),
                            ReduceLROnPlateau(monitor="valid_loss", patience=0, min_delta=10)])
    out = capsys.readouterr().out
    assert "Better model found at epoch 0 with accuracy value:" in out
    assert "No improvement since epoch" in out
    assert "reducing lr to" in out
    for line in out.splitlines():  # a message spread over the metric columns starts "B      e      t ..."
        assert not line.startswith(("B ", "N ", "E ", "T ")), line


def test_b2_valid_pct_zero_trains_on_everything(tmp_path):
    items = list(range(20))
    dls = DataBlock(blocks=(TransformBlock(type_tfms=lambda v: torch.tensor([float(v)])), CategoryBlock),
                    get_y=lambda o: o % 2, splitter=RandomSplitter(valid_pct=0.0)).dataloaders(items, bs=4)
    assert len(dls.train_ds) == 20 and len(dls.valid_ds) == 0
    learn = Learner(dls, nn.Linear(1, 2), loss_func=CrossEntropyLossFlat(), path=tmp_path)
    before = learn.model.weight.detach().clone()
    learn.fit(1, 1e-2)
    assert not torch.equal(before, learn.model.weight)


def test_b3_valid_col_of_text_flags(tmp_path):
    df = pd.DataFrame({"x": range(8), "flag": ["yes" if i % 4 == 0 else "no" for i in range(8)]})
    with pytest.raises(ValueError, match="flag") as err:
        ColSplitter("flag")(df)
    assert "_inner" not in str(err.value)
    df["flag"] = ["True" if i % 4 == 0 else "False" for i in range(8)]
    _, valid = ColSplitter("flag")(df)
    assert list(valid) == [0, 4]  # the text 'False' is not a validation flag


def test_b4_collab_ratings_outside_y_range_are_warned_about():
    rng = np.random.default_rng(0)
    rows = [(u, i, float(rng.integers(1, 11))) for u in range(20) for i in range(15) if rng.random() < 0.7]
    dls = CollabDataLoaders.from_df(pd.DataFrame(rows, columns=["user", "item", "rating"]), bs=32)
    with pytest.warns(UserWarning, match="y_range"):
        collab_learner(dls, n_factors=4, y_range=(0, 5.5))


def test_b5_labels_differing_only_by_whitespace_are_warned_about():
    db = DataBlock(blocks=(TransformBlock(type_tfms=lambda v: torch.tensor([float(v)])), CategoryBlock),
                   get_y=lambda o: "cat " if o % 4 == 0 else ("cat" if o % 2 else "dog"),
                   splitter=IndexSplitter([18, 19]))
    with pytest.warns(UserWarning, match="whitespace"):
        db.dataloaders(list(range(20)), bs=4)


def test_b6_valid_idx_of_index_labels_of_a_shuffled_frame_is_warned_about(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=200), "year": np.repeat([2018, 2019, 2020, 2021], 50),
                       "y": rng.choice(["p", "q"], 200)}).sample(frac=1, random_state=42)
    valid_idx = list(df[df.year == 2021].index)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            TabularDataLoaders.from_df(df, tmp_path, procs=[Normalize], cont_names=["a"], y_names="y",
                                       valid_idx=valid_idx, bs=16)
        except (ValueError, IndexError) as e:  # refusing is as good as warning
            assert "label" in str(e)
            return
    assert any("label" in str(w.message) for w in caught)


def test_c1_datasets_refuse_overlapping_splits():
    from tiers.data.all import Datasets, noop

    with pytest.raises(ValueError, match=r"\[10, 11, 12, 13, 14\]"):
        Datasets(list(range(20)), [[noop], [noop]], splits=[list(range(15)), list(range(10, 20))])


def test_c2_c3_regression_targets_inf_refused_numeric_text_read():
    from tiers.data.all import RegressionBlock

    def db(get_y):
        return DataBlock(blocks=(TransformBlock(type_tfms=lambda v: torch.tensor([float(v)])), RegressionBlock),
                         get_y=get_y, splitter=IndexSplitter([0, 1]))

    with pytest.raises(ValueError, match=r"rows \[3\]"):
        db(lambda o: float("inf") if o == 3 else float(o)).dataloaders(list(range(20)), bs=4)
    x, y = db(lambda o: str(o)).dataloaders(list(range(20)), bs=18).one_batch()
    assert y.dtype == torch.float32 and torch.equal(y, x[:, 0])


def test_c4_c5_metrics_refuse_the_wrong_kind_of_model(tmp_path):
    from tiers.train.all import MSELossFlat, RocAucBinary

    x = torch.randn(32, 4)
    reg = DataLoaders.from_dsets(TensorDataset(x[:24], x[:24, 0]), TensorDataset(x[24:], x[24:, 0]), bs=8)
    with pytest.raises(ValueError, match="regression"):
        Learner(reg, nn.Linear(4, 1), loss_func=MSELossFlat(), metrics=accuracy, path=tmp_path).fit(1, 1e-2)
    y3 = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    cls = DataLoaders.from_dsets(TensorDataset(x[:24], y3[:24]), TensorDataset(x[24:], y3[24:]), bs=8)
    with pytest.raises(ValueError, match="RocAuc"):
        Learner(cls, nn.Linear(4, 3), loss_func=CrossEntropyLossFlat(), metrics=RocAucBinary(),
                path=tmp_path).fit(1, 1e-2)


def test_a2_regression_predict_returns_numbers(tmp_path):
    from PIL import Image

    from tiers.data.all import RegressionBlock
    from tiers.vision.all import ImageBlock, Resize, get_image_files, resnet18, vision_learner

    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (24, 24, 3)).astype(np.uint8)).save(tmp_path / f"{i}.png")
    db = DataBlock(blocks=(ImageBlock, RegressionBlock), get_items=get_image_files, get_y=lambda o: float(o.stem),
                   splitter=RandomSplitter(seed=0), item_tfms=Resize(16))
    learn = vision_learner(db.dataloaders(tmp_path, bs=4), resnet18, pretrained=False)
    dec, pred, _ = learn.predict(get_image_files(tmp_path)[0])
    assert len(dec) == 1 and float(dec[0]) == pytest.approx(float(pred[0]), abs=1e-5)


def test_b7_multi_label_tabular_with_one_column_per_label(tmp_path):
    from tiers.data.all import MultiCategoryBlock
    from tiers.tabular.all import tabular_learner
    from tiers.train.all import BCEWithLogitsLossFlat, accuracy_multi

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=120), "b": rng.normal(size=120)})
    df["t1"], df["t2"] = df.a > 0, df.b > 0
    dls = TabularDataLoaders.from_df(df, tmp_path, procs=[Normalize], cont_names=["a", "b"], y_names=["t1", "t2"],
                                     y_block=MultiCategoryBlock(encoded=True, vocab=["t1", "t2"]), bs=16)
    y = dls.one_batch()[2]
    assert y.shape == (16, 2) and y.dtype == torch.float32
    learn = tabular_learner(dls, metrics=accuracy_multi)
    assert isinstance(learn.loss_func, BCEWithLogitsLossFlat)
    learn.fit(2, 1e-2)
    assert learn.predict(df.iloc[0])[2].shape == (2,)
