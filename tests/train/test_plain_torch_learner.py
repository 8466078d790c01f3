"""The Learner in a plain PyTorch project: torch DataLoaders (a tuple, a single one, no validation), dict batches,
torch optimizer classes, several inputs, probabilities from a user's own torch loss, and fits that would run zero
training steps."""

from functools import partial

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from tiers.data import DataLoaders
from tiers.train import DictBatch, Learner, accuracy

torch.set_num_threads(1)

_g = torch.Generator().manual_seed(0)
X = torch.randn(64, 4, generator=_g)
Y = (X[:, 0] + 0.5 * X[:, 1] > 0).long()
DS = TensorDataset(X, Y)


def _fit(learn, n=3, lr=0.1):
    with learn.no_bar(), learn.no_logging():
        learn.fit(n, lr)
    return learn


def _weights(model):
    return [p.detach().clone() for p in model.parameters()]


def _changed(before, model):
    return any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_tuple_of_torch_loaders():
    torch.manual_seed(0)
    learn = Learner((DataLoader(DS, 16, shuffle=True), DataLoader(DS, 16)), nn.Linear(4, 2),
                    loss_func=nn.CrossEntropyLoss(), metrics=accuracy)
    w = _weights(learn.model)
    _fit(learn)
    assert _changed(w, learn.model)
    assert len(learn.recorder.values) == 3 and learn.recorder.values[-1][2] > 0.6  # valid accuracy is there


def test_single_torch_loader_trains_without_validation():
    torch.manual_seed(0)
    learn = Learner(DataLoader(DS, 16, shuffle=True), nn.Linear(4, 2), loss_func=nn.CrossEntropyLoss(),
                    metrics=accuracy)
    w = _weights(learn.model)
    _fit(learn)
    assert _changed(w, learn.model)
    row = learn.recorder.values[-1]
    assert row[0] == row[0] and row[0] < 1.0  # a train loss
    # no validation loader: validation loss and metrics are blank, never a number from somewhere else
    assert all(v is None for v in row[1:]), row


def test_torch_optimizer_class_is_wrapped():
    for opt in (torch.optim.AdamW, torch.optim.SGD):
        torch.manual_seed(0)
        learn = Learner((DataLoader(DS, 16), DataLoader(DS, 16)), nn.Linear(4, 2), loss_func=nn.CrossEntropyLoss(),
                        opt_func=opt)
        w = _weights(learn.model)
        _fit(learn, 1)
        assert _changed(w, learn.model)
        assert isinstance(learn.opt.opt, opt)
    learn = Learner((DataLoader(DS, 16), DataLoader(DS, 16)), nn.Linear(4, 2), loss_func=nn.CrossEntropyLoss(),
                    opt_func=partial(torch.optim.SGD, momentum=0.9))
    _fit(learn, 1)
    assert isinstance(learn.opt.opt, torch.optim.SGD) and learn.opt.opt.param_groups[0]["momentum"] == 0.9


class DictDS(Dataset):
    def __len__(self):
        return len(X)

    def __getitem__(self, i):
        return {"x": X[i], "y": Y[i], "id": i}


def test_dict_batches_refused_before_the_first_step():
    learn = Learner((DataLoader(DictDS(), 16), DataLoader(DictDS(), 16)), nn.Linear(4, 2),
                    loss_func=nn.CrossEntropyLoss())
    w = _weights(learn.model)
    with pytest.raises(TypeError, match=r"dict.*'x'.*'y'.*DictBatch\(inputs="):
        _fit(learn, 1)
    assert not _changed(w, learn.model)


def test_dict_batches_with_dict_batch():
    torch.manual_seed(0)
    learn = Learner((DataLoader(DictDS(), 16, shuffle=True), DataLoader(DictDS(), 16)), nn.Linear(4, 2),
                    loss_func=nn.CrossEntropyLoss(), metrics=accuracy, cbs=DictBatch(inputs="x", targets="y"))
    w = _weights(learn.model)
    _fit(learn)
    assert _changed(w, learn.model) and learn.recorder.values[-1][2] > 0.6
    preds, targs = learn.get_preds()
    assert preds.shape == (64, 2) and torch.equal(targs, Y)
    with pytest.raises(KeyError, match="'label'"):
        _fit(Learner((DataLoader(DictDS(), 16), DataLoader(DictDS(), 16)), nn.Linear(4, 2),
                     loss_func=nn.CrossEntropyLoss(), cbs=DictBatch(inputs="x", targets="label")), 1)


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 2)

    def forward(self, a, b):
        return self.lin(torch.cat([a, b], 1))


def test_several_inputs_with_settable_n_inp():
    ds3 = TensorDataset(X[:, :2], X[:, 2:], Y)
    dls = DataLoaders(DataLoader(ds3, 16, shuffle=True), DataLoader(ds3, 16))
    dls.n_inp = 2
    assert dls.n_inp == 2
    torch.manual_seed(0)
    learn = Learner(dls, TwoInputs(), loss_func=nn.CrossEntropyLoss(), metrics=accuracy)
    w = _weights(learn.model)
    _fit(learn)
    assert _changed(w, learn.model) and learn.recorder.values[-1][2] > 0.6
    # a tuple of loaders with three-element batches: n_inp set on the Learner's DataLoaders
    learn = Learner((DataLoader(ds3, 16), DataLoader(ds3, 16)), TwoInputs(), loss_func=nn.CrossEntropyLoss())
    learn.dls.n_inp = 2
    _fit(learn, 1)


@pytest.mark.parametrize("loss,act", [
    (nn.CrossEntropyLoss(), lambda o: torch.softmax(o, 1)),
    (nn.BCEWithLogitsLoss(), torch.sigmoid),
    (nn.NLLLoss(), torch.exp),
])
def test_get_preds_applies_the_activation_of_a_users_torch_loss(loss, act):
    model = nn.Linear(4, 2)
    if isinstance(loss, nn.BCEWithLogitsLoss):
        ds = TensorDataset(X, nn.functional.one_hot(Y, 2).float())
    else:
        ds = DS
    if isinstance(loss, nn.NLLLoss):
        model = nn.Sequential(model, nn.LogSoftmax(1))
    learn = Learner((DataLoader(ds, 16), DataLoader(ds, 16)), model, loss_func=loss)
    preds, _ = learn.get_preds()
    with torch.no_grad():
        want = act(model(X))
    assert torch.allclose(preds, want, atol=1e-6)
    raw, _ = learn.get_preds(act=lambda o: o)  # act= overrides: raw outputs
    with torch.no_grad():
        assert torch.allclose(raw, model(X), atol=1e-6)


def test_get_preds_of_an_unknown_loss_returns_raw_outputs():
    model = nn.Linear(4, 2)

    def my_loss(out, y):
        return nn.functional.cross_entropy(out, y)

    learn = Learner((DataLoader(DS, 16), DataLoader(DS, 16)), model, loss_func=my_loss)
    preds, _ = learn.get_preds()
    with torch.no_grad():
        assert torch.allclose(preds, model(X), atol=1e-6)


@pytest.mark.parametrize("how", ["fit", "fit_one_cycle", "lr_find"])
def test_a_fit_with_zero_training_steps_is_refused_before_it_starts(how):
    dls = DataLoaders(DataLoader(DS, 100, shuffle=True, drop_last=True), DataLoader(DS, 16))
    learn = Learner(dls, nn.Linear(4, 2), loss_func=nn.CrossEntropyLoss())
    w = _weights(learn.model)
    with pytest.raises(ValueError, match=r"zero training steps.*batch size 100.*64 items.*drop_last"):
        with learn.no_bar(), learn.no_logging():
            getattr(learn, how)(1) if how != "lr_find" else learn.lr_find(show_plot=False)
    assert not _changed(w, learn.model)


def test_tiers_loader_keeps_its_one_short_batch_instead():
    # tiers' own loaders keep a last short batch when dropping it would leave the epoch empty (with a warning)
    from tiers.data import Categorize, Datasets, IndexSplitter, ItemGetter

    items = [[x, "a" if x[0] > 0 else "b"] for x in X]
    dsets = Datasets(items, [[ItemGetter(0)], [ItemGetter(1), Categorize()]], splits=IndexSplitter(range(50, 64))(items))
    with pytest.warns(UserWarning, match="short batch is kept"):
        dls = dsets.dataloaders(bs=64)
    learn = Learner(dls, nn.Linear(4, 2))
    w = _weights(learn.model)
    _fit(learn, 1)
    assert _changed(w, learn.model)
