"""get_preds puts everything back in dataset order when the loader's unshuffled order is not 0..n-1 (AUDIT S1).

The loaders here are real tiers DataLoaders (a TfmdDL subclass whose `get_idxs` is a fixed permutation, like text's
SortedDL yielding longest-first), and the learner really trains.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tiers.data import Categorize, Datasets, IndexSplitter, ItemGetter, TfmdDL
from tiers.train import ClassificationInterpretation, Learner, accuracy

torch.set_num_threads(1)
NAMES = ["a", "b", "c"]
N_VALID = 23


class PermutedDL(TfmdDL):
    """Unshuffled, it yields its items in a fixed scrambled order (reversed odd positions first)."""

    def get_idxs(self):
        idxs = list(super().get_idxs())
        if self.shuffle:
            return idxs
        return idxs[1::2][::-1] + idxs[0::2]


@pytest.fixture(scope="module")
def learn():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(80, 2, generator=g)
    cls = (x[:, 0] > 0).long() + (x[:, 1] > 0.7).long()
    items = [(xi, NAMES[int(c)]) for xi, c in zip(x, cls)]
    dsets = Datasets(items, [[ItemGetter(0)], [ItemGetter(1), Categorize()]],
                     splits=IndexSplitter(range(80 - N_VALID, 80))(items))
    dls = dsets.dataloaders(bs=8, dl_type=PermutedDL)
    learn = Learner(dls, nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3)), metrics=accuracy)
    with learn.no_bar(), learn.no_logging():
        learn.fit(2, 3e-2)
    return learn


def _expected(learn, items):
    # What the model says about each dataset item, computed item by item (the truth get_preds must match).
    x = torch.stack([it[0] for it in items])
    with torch.no_grad():
        learn.model.eval()
        return torch.softmax(learn.model(x), dim=1)


def test_the_loader_really_iterates_out_of_order(learn):
    dl = learn.dls.valid
    order = list(dl.get_idxs())
    assert order != list(range(N_VALID)) and sorted(order) == list(range(N_VALID))
    first = next(iter(dl))[0]
    assert torch.equal(first[0], dl.dataset[order[0]][0])


def test_get_preds_inputs_targets_decoded_losses_in_dataset_order(learn):
    ds = learn.dls.valid_ds
    inp, preds, targs, dec, losses = learn.get_preds(with_input=True, with_decoded=True, with_loss=True)
    xs = torch.stack([ds[i][0] for i in range(N_VALID)])
    ys = torch.stack([torch.as_tensor(ds[i][1]) for i in range(N_VALID)])
    assert torch.equal(inp, xs)
    assert torch.equal(targs, ys)
    assert torch.allclose(preds, _expected(learn, [ds[i] for i in range(N_VALID)]), atol=1e-6)
    assert torch.equal(dec, preds.argmax(1))
    assert torch.allclose(losses, F.cross_entropy(torch.log(preds), targs, reduction="none"), atol=1e-5)


def test_reorder_false_keeps_the_loaders_iteration_order(learn):
    order = list(learn.dls.valid.get_idxs())
    ds = learn.dls.valid_ds
    _, targs = learn.get_preds(dl=learn.dls.valid, reorder=False)
    assert targs.tolist() == [int(ds[i][1]) for i in order]
    _, targs_default = learn.get_preds(reorder=False)
    assert targs_default.tolist() == targs.tolist()


def test_test_dl_predictions_line_up_with_the_given_rows(learn):
    ds = learn.dls.valid_ds
    rows = [ds.items[i] for i in range(N_VALID)]
    tdl = learn.dls.test_dl(rows, with_labels=True)
    assert list(tdl.get_idxs()) != list(range(N_VALID))  # the test loader inherits the scrambled order
    preds, targs = learn.get_preds(dl=tdl)
    assert torch.allclose(preds, _expected(learn, rows), atol=1e-6)
    assert targs.tolist() == [NAMES.index(r[1]) for r in rows]
    for i in (0, 5, N_VALID - 1):
        _, _, probs = learn.predict(rows[i])
        assert torch.allclose(probs, preds[i], atol=1e-6)


def test_interpretation_top_losses_index_the_dataset(learn):
    interp = ClassificationInterpretation.from_learner(learn)
    ds = learn.dls.valid_ds
    vals, idx, its = interp.top_losses(4, items=True)
    for v, i, it in zip(vals, idx, its):
        p = _expected(learn, [ds[int(i)]])[0]
        assert it is ds.items[int(i)]
        assert torch.isclose(v, -torch.log(p[NAMES.index(it[1])]), atol=1e-5)


def test_tta_is_in_dataset_order(learn):
    ds = learn.dls.valid_ds
    _, targs = learn.tta(n=1)
    assert targs.tolist() == [int(ds[i][1]) for i in range(N_VALID)]
