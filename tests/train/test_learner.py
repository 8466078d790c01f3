"""Learner: default loss, devices, validate, get_preds/predict decoding, save/load, freezing with the BN bypass,
lr_find, plots and progress output."""

import copy
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from tiers.data import Categorize, DataLoaders, Datasets, ItemGetter  # noqa: E402
from tiers.optim import SGD, Adam, OptimWrapper  # noqa: E402
from tiers.train import (  # noqa: E402
    BCEWithLogitsLossFlat,
    CrossEntropyLossFlat,
    Learner,
    MSELossFlat,
    ProgressCallback,
    accuracy,
    combined_cos,
    norm_bias_params,
)


def xy(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return x, (x[:, 0] + 0.5 * x[:, 1] > 0).long()


def make_dls(y_float=False, shuffle=False, bs=16):
    x, y = xy()
    y = y.float() if y_float else y
    return DataLoaders(
        DataLoader(TensorDataset(x[:64], y[:64]), batch_size=bs, shuffle=shuffle),
        DataLoader(TensorDataset(x[64:], y[64:]), batch_size=bs),
    )


def mlp(n_out=2):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, n_out))


def quiet(learn):
    learn.logger = lambda *a: None
    return learn


# ---------------------------------------------------------------- construction


def test_default_loss_comes_from_the_targets():
    assert isinstance(Learner(make_dls(), mlp()).loss_func, CrossEntropyLossFlat)
    assert isinstance(Learner(make_dls(y_float=True), mlp(1)).loss_func, MSELossFlat)
    x, _ = xy()
    dls = DataLoaders(DataLoader(TensorDataset(x), batch_size=8), DataLoader(TensorDataset(x), batch_size=8))
    with pytest.raises(ValueError, match="has no target"):
        Learner(dls, mlp())


def test_default_loss_from_a_tiers_dataset():
    x, y = xy()
    items = [(x[i], "pos" if y[i] else "neg") for i in range(len(x))]
    dsets = Datasets(items, [[ItemGetter(0)], [ItemGetter(1), Categorize()]], splits=[list(range(64)), list(range(64, 96))])
    dls = dsets.dataloaders(bs=16, device="cpu")
    learn = Learner(dls, mlp())
    assert isinstance(learn.loss_func, CrossEntropyLossFlat)


def test_learner_reads_model_attributes_and_rejects_non_modules():
    learn = Learner(make_dls(), BNNet())
    assert learn.head is learn.model.head
    with pytest.raises(AttributeError, match="neither has its model"):
        learn.tail
    assert learn.training is False and learn.path == Path(".")
    with pytest.raises(TypeError, match="must be a torch.nn.Module"):
        Learner(make_dls(), lambda x: x)


# ---------------------------------------------------------------- training, validation, predictions


def test_fit_trains_and_validate_matches_a_manual_computation():
    learn = quiet(Learner(make_dls(shuffle=True), mlp(), opt_func=Adam, lr=1e-2, metrics=accuracy))
    learn.fit(3)
    x, y = xy()
    with torch.no_grad():
        out = learn.model(x[64:])
    loss, acc = learn.validate()
    assert loss == pytest.approx(F.cross_entropy(out, y[64:]).item(), rel=1e-5)
    assert acc == pytest.approx((out.argmax(1) == y[64:]).float().mean().item())
    assert acc > 0.8
    assert len(learn.recorder.values) == 3 and learn.recorder.values[-1][1] == pytest.approx(loss, rel=1e-5)
    assert learn.recorder.metric_names == ["epoch", "train_loss", "valid_loss", "accuracy", "time"]
    assert len(learn.recorder.losses) == 12 and len(learn.recorder.lrs) == 12


def test_get_preds_is_in_dataset_order_even_from_a_shuffled_loader():
    learn = quiet(Learner(make_dls(shuffle=True), mlp()))
    x, y = xy()
    preds, targs = learn.get_preds(ds_idx=0)
    with torch.no_grad():
        expected = F.softmax(learn.model(x[:64]), dim=1)
    torch.testing.assert_close(preds, expected)
    assert torch.equal(targs, y[:64])


def test_get_preds_options():
    learn = quiet(Learner(make_dls(), mlp()))
    x, y = xy()
    inp, preds, targs, dec, losses = learn.get_preds(with_input=True, with_decoded=True, with_loss=True)
    with torch.no_grad():
        out = learn.model(x[64:])
    torch.testing.assert_close(inp, x[64:])
    assert torch.equal(dec, out.argmax(1))
    torch.testing.assert_close(losses, F.cross_entropy(out, y[64:], reduction="none"))
    assert learn.loss_func.reduction == "mean"  # restored
    raw, _ = learn.get_preds(act=lambda t: t)
    torch.testing.assert_close(raw, out)
    # a plain function loss with a reduction argument works too
    learn2 = quiet(Learner(make_dls(), mlp(), loss_func=F.cross_entropy))
    *_, l2 = learn2.get_preds(with_loss=True)
    assert l2.shape == (32,)
    learn3 = quiet(Learner(make_dls(), mlp(), loss_func=lambda p, t: F.cross_entropy(p, t)))
    with pytest.raises(TypeError, match="has no `reduction` setting"):
        learn3.get_preds(with_loss=True)


def test_get_preds_keeps_the_last_partial_batch_of_a_drop_last_loader():
    x, y = xy(70)
    dls = DataLoaders(DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, drop_last=True),
                      DataLoader(TensorDataset(x, y), batch_size=16))
    preds, targs = quiet(Learner(dls, mlp())).get_preds(ds_idx=0)
    assert preds.shape == (70, 2) and torch.equal(targs, y)


def test_predict_with_plain_loaders():
    learn = quiet(Learner(make_dls(), mlp()))
    x, _ = xy()
    dec, idx, probs = learn.predict(x[3])
    with torch.no_grad():
        expected = F.softmax(learn.model(x[3:4]), dim=1)[0]
    torch.testing.assert_close(probs, expected)
    assert int(idx) == int(expected.argmax()) and int(dec) == int(idx)


def test_predict_decodes_class_names_with_tiers_data():
    x, y = xy()
    items = [(x[i], "pos" if y[i] else "neg") for i in range(len(x))]
    dsets = Datasets(items, [[ItemGetter(0)], [ItemGetter(1), Categorize()]],
                     splits=[list(range(64)), list(range(64, 96))])
    dls = dsets.dataloaders(bs=16, device="cpu")
    learn = quiet(Learner(dls, mlp(), opt_func=Adam, lr=1e-2))
    learn.fit(4)
    label, idx, probs = learn.predict(items[70])
    assert label in ("neg", "pos") and label == dsets.vocab[int(idx)]
    assert probs.shape == (2,) and probs.sum().item() == pytest.approx(1.0)
    correct = sum(learn.predict(items[i])[0] == items[i][1] for i in range(64, 96))
    assert correct >= 24
    preds, targs, dec = learn.get_preds(with_decoded=True)
    assert preds.shape == (32, 2) and torch.equal(dec, preds.argmax(1))


def test_multi_label_preds_are_sigmoid_and_thresholded():
    x, y = xy()
    y2 = torch.stack([y, 1 - y], dim=1).float()
    dls = DataLoaders(DataLoader(TensorDataset(x[:64], y2[:64]), batch_size=16),
                      DataLoader(TensorDataset(x[64:], y2[64:]), batch_size=16))
    learn = quiet(Learner(dls, mlp(), loss_func=BCEWithLogitsLossFlat()))
    preds, _, dec = learn.get_preds(with_decoded=True)
    assert preds.min() >= 0 and preds.max() <= 1 and torch.equal(dec, preds > 0.5)


# ---------------------------------------------------------------- persistence


def test_save_and_load_model_and_optimizer(tmp_path):
    learn = quiet(Learner(make_dls(), mlp(), opt_func=Adam, path=tmp_path))
    learn.fit(1)
    f = learn.save("stage1")
    assert f == tmp_path / "models" / "stage1.pth" and f.exists()
    w = [p.detach().clone() for p in learn.model.parameters()]
    opt_state = {k: v.clone() for k, v in learn.opt.state[learn.model[0].weight].items() if torch.is_tensor(v)}
    learn.fit(1)
    learn.load("stage1")
    assert all(torch.equal(a, b) for a, b in zip(w, learn.model.parameters()))
    restored = learn.opt.state[learn.model[0].weight]
    assert opt_state and all(torch.equal(v, restored[k]) for k, v in opt_state.items())
    fresh = quiet(Learner(make_dls(), mlp(), path=tmp_path))
    fresh.load("stage1", with_opt=False)
    assert all(torch.equal(a, b) for a, b in zip(w, fresh.model.parameters()))
    with pytest.raises(FileNotFoundError, match="no file at"):
        learn.load("nope")
    (tmp_path / "models" / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable weights file"):
        learn.load("bad")


# ---------------------------------------------------------------- transfer learning


class BNNet(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU())
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.body(x))


def body_head(m):
    return [list(m.body.parameters()), list(m.head.parameters())]


def test_freeze_keeps_batchnorm_training_and_its_stats_updating():
    learn = quiet(Learner(make_dls(), BNNet(), opt_func=SGD, lr=0.1, splitter=body_head))
    learn.freeze()
    lin, bn = learn.model.body[0], learn.model.body[1]
    w_lin, w_bn, b_bn = lin.weight.detach().clone(), bn.weight.detach().clone(), bn.bias.detach().clone()
    mean0 = bn.running_mean.clone()
    w_head = learn.model.head.weight.detach().clone()
    assert not lin.weight.requires_grad and bn.weight.requires_grad and bn.bias.requires_grad
    learn.fit(1)
    assert torch.equal(lin.weight, w_lin)  # frozen
    assert not torch.equal(bn.weight, w_bn) and not torch.equal(bn.bias, b_bn)  # BN bypass (paper 4.1)
    assert not torch.equal(bn.running_mean, mean0)
    assert not torch.equal(learn.model.head.weight, w_head)
    learn.unfreeze()
    assert lin.weight.requires_grad
    learn.fit(1)
    assert not torch.equal(lin.weight, w_lin)


def test_train_bn_false_freezes_batchnorm_too():
    learn = quiet(Learner(make_dls(), BNNet(), opt_func=SGD, lr=0.1, splitter=body_head, train_bn=False))
    learn.freeze()
    bn = learn.model.body[1]
    w_bn = bn.weight.detach().clone()
    learn.fit(1)
    assert torch.equal(bn.weight, w_bn)


def test_no_weight_decay_on_norm_and_bias_params_by_default():
    learn = Learner(make_dls(), BNNet(), opt_func=Adam, splitter=body_head)
    learn.create_opt()
    nb = {id(p) for p in norm_bias_params(learn.model)}
    for p in learn.model.parameters():
        assert learn.opt.state[p].get("do_wd", True) == (id(p) not in nb)
    learn2 = Learner(make_dls(), BNNet(), opt_func=Adam, splitter=body_head, wd_bn_bias=True)
    learn2.create_opt()
    assert all(learn2.opt.state[p].get("do_wd", True) for p in learn2.model.parameters())


def test_torch_optimizers_through_optim_wrapper():
    from functools import partial

    learn = quiet(Learner(make_dls(), mlp(), opt_func=partial(OptimWrapper, opt=torch.optim.AdamW), lr=1e-2,
                          metrics=accuracy))
    learn.fit_one_cycle(3)
    assert learn.validate()[1] > 0.8


# ---------------------------------------------------------------- lr_find and plots


def test_lr_find_restores_weights_and_suggests(tmp_path):
    learn = quiet(Learner(make_dls(), mlp(), opt_func=Adam, path=tmp_path))
    learn.fit(1)
    w = [p.detach().clone() for p in learn.model.parameters()]
    opt_state = copy.deepcopy(learn.opt.state_dict())  # state_dict holds references to live tensors
    res = learn.lr_find(num_it=40, show_plot=True)
    assert type(res).__name__ == "SuggestedLRs" and res._fields == ("valley",)  # fastai 2.8's default
    assert all(1e-7 <= v <= 10 for v in res)
    assert all(torch.equal(a, b) for a, b in zip(w, learn.model.parameters()))
    after = learn.opt.state_dict()
    for k, v in opt_state["state"].items():
        for name, t in v.items():
            if torch.is_tensor(t):
                assert torch.equal(t, after["state"][k][name])
    lrs = learn.recorder.lrs
    assert lrs[0] == pytest.approx(1e-7) and all(b > a for a, b in zip(lrs, lrs[1:]))
    assert len(lrs) <= 40
    import matplotlib.pyplot as plt

    plt.gcf().savefig(tmp_path / "lr_find.png")
    assert (tmp_path / "lr_find.png").stat().st_size > 5000
    plt.close("all")
    assert learn.lr_find(num_it=20, show_plot=False, suggest_funcs=None) is None


def test_lr_find_suggestions_follow_fastai_2_8(tmp_path):
    from tiers.train.callbacks.lr_finder import SuggestionMethod, minimum, slide, steep, valley

    learn = quiet(Learner(make_dls(), mlp(), opt_func=Adam, path=tmp_path))
    res = learn.lr_find(num_it=40, show_plot=False)
    assert res._fields == ("valley",) and len(res) == 1
    (lr,) = res  # fastai 2.8: `lr = learn.lr_find()[0]` is the valley
    assert res[0] == res.valley == lr and 1e-7 <= lr <= 10
    four = learn.lr_find(num_it=40, show_plot=True, suggest_funcs=(minimum, steep, valley, slide))
    assert four._fields == ("minimum", "steep", "valley", "slide")
    assert all(1e-7 <= v <= 10 for v in four)
    import matplotlib.pyplot as plt

    assert len(plt.gca().lines) == 1 + 4  # the loss curve and one marker per suggestion
    plt.close("all")
    two = learn.lr_find(num_it=40, show_plot=False, suggest_funcs=(SuggestionMethod.Minimum, SuggestionMethod.Steep))
    assert two._fields == ("minimum", "steep")  # the fastai 2.0 / book pair, asked for by name
    lr_min, lr_steep = two
    assert lr_min > 0 and lr_steep > 0
    one = learn.lr_find(num_it=40, show_plot=False, suggest_funcs=SuggestionMethod.Valley)  # fastai's own spelling
    assert one._fields == ("valley",)


def test_lr_find_stops_on_divergence():
    learn = quiet(Learner(make_dls(), mlp(), opt_func=SGD))
    learn.lr_find(start_lr=1e-3, end_lr=1e6, num_it=100, show_plot=False, suggest_funcs=None)
    assert len(learn.recorder.lrs) < 100


def test_plots_are_written_to_png(tmp_path):
    import matplotlib.pyplot as plt

    learn = quiet(Learner(make_dls(), mlp(), opt_func=Adam))
    learn.fit_one_cycle(4, 1e-2)
    assert learn.recorder.plot_loss(skip_start=0, show_epochs=True) is None  # nothing for a notebook to echo
    plt.gcf().savefig(tmp_path / "loss.png")
    assert learn.recorder.plot_sched() is None
    fig = learn.recorder.plot_sched(return_fig=True)
    fig.savefig(tmp_path / "sched.png")
    for name in ("loss.png", "sched.png"):
        assert (tmp_path / name).stat().st_size > 5000
    plt.close("all")
    with pytest.raises(ValueError, match="no schedule recorded"):
        quiet(Learner(make_dls(), mlp())).recorder.plot_sched()


# ---------------------------------------------------------------- progress and logging


def test_progress_prints_a_metrics_table_and_no_bar_off_a_terminal():
    out = io.StringIO()
    learn = Learner(make_dls(), mlp(), metrics=accuracy)
    learn.remove_cb(ProgressCallback).add_cb(ProgressCallback(file=out))
    learn.fit(2)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["epoch", "train_loss", "valid_loss", "accuracy", "time"]
    assert [ln.split()[0] for ln in lines[1:]] == ["0", "1"] and len(lines) == 3
    assert learn.logger is print  # restored


def test_progress_bar_when_forced_and_silent_when_asked():
    class TTY(io.StringIO):
        def isatty(self):
            return True

    out = TTY()
    learn = Learner(make_dls(), mlp())
    learn.remove_cb(ProgressCallback).add_cb(ProgressCallback(file=out, throttle=0))
    learn.fit(1)
    assert "epoch 1/1 train" in out.getvalue() and "valid" in out.getvalue()
    out2 = TTY()
    learn.progress.file = out2
    with learn.no_bar():
        learn.fit(1)
    assert "epoch 1/1 train" not in out2.getvalue() and "train_loss" in out2.getvalue()
    out3 = TTY()
    learn.progress.file = out3
    with learn.no_bar(), learn.no_logging():
        learn.fit(1)
    assert out3.getvalue() == ""


def test_fit_argument_checks():
    learn = Learner(make_dls(), mlp())
    with pytest.raises(ValueError, match="n_epoch=-1"):
        learn.fit(-1)
    with pytest.raises(ValueError, match="start_epoch=3"):
        learn.fit(2, start_epoch=3)


def test_start_epoch_skips_epochs_but_keeps_the_schedule_length():
    learn = quiet(Learner(make_dls(), mlp(), opt_func=Adam))
    learn.fit_one_cycle(4, 1e-2, start_epoch=2)
    lrs = np.array(learn.recorder.hps["lr"])
    # the first 2 of 4 epochs are skipped: the schedule starts half-way, as if they had run
    assert len(lrs) == 8 and lrs[0] == pytest.approx(combined_cos(0.25, 1e-2 / 25, 1e-2, 1e-2 / 1e5)(0.5))
    assert len(learn.recorder.values) == 2


def test_test_dl_preds_and_show_results_with_tiers_data(capsys):
    x, y = xy()
    items = [(x[i], "pos" if y[i] else "neg") for i in range(len(x))]
    dsets = Datasets(items, [[ItemGetter(0)], [ItemGetter(1), Categorize()]],
                     splits=[list(range(64)), list(range(64, 96))])
    dls = dsets.dataloaders(bs=16, device="cpu")
    learn = quiet(Learner(dls, mlp()))
    preds, targs = learn.get_preds(dl=dls.test_dl(items[:5]))
    with torch.no_grad():
        expected = F.softmax(learn.model(x[:5]), dim=1)
    torch.testing.assert_close(preds, expected)
    assert targs is None  # a test set has no labels
    assert learn.show_results(max_n=4, shuffle=False) is None  # the table is shown, nothing for a notebook to echo
    out = capsys.readouterr().out
    assert "prediction" in out and ("pos" in out or "neg" in out)
    with pytest.raises(TypeError, match="needs a tiers TfmdDL"):
        quiet(Learner(make_dls(), mlp())).show_results()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_batches_follow_the_model_to_the_gpu():
    learn = quiet(Learner(make_dls(), mlp().cuda(), metrics=accuracy))
    learn.fit(1)
    assert next(learn.model.parameters()).is_cuda
    preds, targs = learn.get_preds()
    assert preds.device.type == "cpu" and preds.shape == (32, 2)
    dls = make_dls()
    dls.device = torch.device("cuda")
    learn2 = quiet(Learner(dls, mlp()))
    learn2.fit(1)
    assert next(learn2.model.parameters()).is_cuda  # the model goes to the data's device


def test_notebook_table_is_html_updated_in_place(monkeypatch):
    import IPython.display

    import tiers.train.callbacks.progress as progress

    shown = []

    class Handle:
        def update(self, obj, raw=False):
            shown.append(("update", obj["text/html"]))

    def fake_display(obj, raw=False, display_id=False):
        shown.append(("display", obj["text/html"]))
        return Handle() if display_id else None

    monkeypatch.setattr(progress, "_in_notebook", lambda: True)
    monkeypatch.setattr(IPython.display, "display", fake_display)
    learn = Learner(make_dls(), mlp(), metrics=accuracy)
    learn.fit(2)
    # one output (bars and table), updated in place: tests/integration/test_notebook.py runs it in a real kernel
    assert [kind for kind, _ in shown] == ["display"] + ["update"] * (len(shown) - 1) and len(shown) > 2
    html = shown[-1][1]
    assert ">train_loss</th>" in html and html.count("<tr>") == 3  # header + 2 epochs
    monkeypatch.undo()
    assert progress._in_notebook() is False  # a plain Python process is not a notebook


def test_default_loss_falls_back_to_a_batch_when_items_are_not_tensors_yet():
    class Raw:  # an item-level target type that only the collation turns into a tensor
        def __init__(self, v):
            self.v = v

    class DS(torch.utils.data.Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            return torch.randn(4), Raw(float(i))

    def collate(items):
        return torch.stack([x for x, _ in items]), torch.tensor([r.v for _, r in items])

    dl = DataLoader(DS(), batch_size=4, collate_fn=collate)
    assert isinstance(Learner(DataLoaders(dl, dl), mlp(1)).loss_func, MSELossFlat)


def test_learn_path_is_tiers_path_with_ls(tmp_path):
    # fastai's learn.path is fastcore's Path: `(learn.path/learn.model_dir).ls()` is an everyday notebook line
    from tiers.dispatch.paths import Path as TPath

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "a.pth").write_bytes(b"")
    x = torch.randn(32, 2)
    dls = DataLoaders(DataLoader(TensorDataset(x, x[:, :1]), batch_size=8), DataLoader(TensorDataset(x, x[:, :1]), batch_size=8))
    learn = Learner(dls, nn.Linear(2, 1), loss_func=nn.MSELoss(), path=str(tmp_path))
    assert isinstance(learn.path, TPath) and isinstance(learn.model_dir, TPath)
    assert [p.name for p in (learn.path / learn.model_dir).ls()] == ["a.pth"]


def test_a_batch_of_a_tuple_subclass_is_split_at_n_inp():
    # a dataset returning namedtuples (torch's default collation keeps the type): inputs and targets, not one input
    from collections import namedtuple

    Pair = namedtuple("Pair", "x y")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    y = (x[:, 0] > 0).long()
    ds = [Pair(a, b) for a, b in zip(x, y)]
    dls = DataLoaders(DataLoader(ds[:48], batch_size=16), DataLoader(ds[48:], batch_size=16))
    seen = []

    from tiers.train import Callback

    class See(Callback):
        def after_pred(self):
            seen.append((type(self.learn.xb), len(self.learn.xb), len(self.learn.yb)))

    learn = Learner(dls, nn.Linear(4, 2), loss_func=F.cross_entropy, cbs=See())
    learn.fit(1, 0.1)
    assert seen and all(s == (tuple, 1, 1) for s in seen)
