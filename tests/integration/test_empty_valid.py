"""An empty validation set (valid_pct=0 trains, see packages/data/CHANGELOG.md): `get_preds` and
`ClassificationInterpretation.from_learner` say the validation set is empty and how to predict other items, instead
of a silent `(None, None)` / an AttributeError on None; `validate()` keeps fastai's blank results."""

import pytest
import torch
from torch import nn

from tiers.data import Categorize, Datasets, ItemGetter, RandomSplitter
from tiers.train import ClassificationInterpretation, Learner, accuracy

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def learn_and_items(tmp_path_factory):
    g = torch.Generator().manual_seed(0)
    items = [[x, "pos" if x[0] > 0 else "neg"] for x in torch.randn(24, 3, generator=g)]
    dsets = Datasets(items, [[ItemGetter(0)], [ItemGetter(1), Categorize()]], splits=RandomSplitter(valid_pct=0)(items))
    dls = dsets.dataloaders(bs=8)
    assert (len(dls.train_ds), len(dls.valid_ds), len(dls.valid)) == (24, 0, 0)
    torch.manual_seed(0)
    learn = Learner(dls, nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)), metrics=accuracy,
                    path=tmp_path_factory.mktemp("empty"))
    learn.fit(1, 1e-2)
    return learn, items


def test_get_preds_on_empty_validation_set_names_it_and_the_fix(learn_and_items):
    learn, items = learn_and_items
    assert learn.validate() == [None, None]  # fastai: blank results, kept
    with pytest.raises(ValueError) as ei:
        learn.get_preds()
    msg = str(ei.value)
    assert "validation set (learn.dls[1]) is empty" in msg and "valid_pct=0" in msg
    assert "ds_idx=0" in msg and "dl=" in msg
    # the fixes the message gives work
    preds, targs = learn.get_preds(ds_idx=0)
    assert preds.shape == (24, 2) and len(targs) == 24
    preds, targs = learn.get_preds(dl=learn.dls.test_dl(items[:5], with_labels=True))
    assert preds.shape == (5, 2)


def test_get_preds_on_an_empty_given_loader(learn_and_items):
    learn, _ = learn_and_items
    with pytest.raises(ValueError, match=r"loader passed as dl= is empty.*test_dl"):
        learn.get_preds(dl=learn.dls.valid)


def test_interpretation_on_empty_validation_set(learn_and_items):
    learn, _ = learn_and_items
    with pytest.raises(ValueError, match=r"ClassificationInterpretation.from_learner: the validation set "
                                         r"\(learn.dls\[1\]\) is empty.*ds_idx=0"):
        ClassificationInterpretation.from_learner(learn)
    interp = ClassificationInterpretation.from_learner(learn, ds_idx=0)
    cm = interp.confusion_matrix()
    assert int(cm.sum()) == 24
