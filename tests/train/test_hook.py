"""Tests of hooks, `HookCallback`, `ActivationStats` and `learn.summary()`."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from tiers.data import DataLoaders  # noqa: E402
from tiers.train import (  # noqa: E402
    ActivationStats,
    Hook,
    HookCallback,
    Hooks,
    Learner,
    dummy_eval_hooks,
    hook_output,
    hook_outputs,
    model_summary,
)

torch.set_num_threads(1)


def _model():
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2))


def _learner(model=None, **kw):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 4, generator=g)
    y = (x[:, 0] > 0).long()
    dls = DataLoaders(DataLoader(TensorDataset(x[:192], y[:192]), batch_size=32, shuffle=True),
                      DataLoader(TensorDataset(x[192:], y[192:]), batch_size=64))
    return Learner(dls, model or _model(), **kw)


def test_hook_output_and_remove():
    m = _model()
    x = torch.randn(5, 4)
    with hook_output(m[0]) as h:
        m(x)
        assert h.stored.shape == (5, 16) and not h.stored.requires_grad
        assert torch.equal(h.stored, m[0](x).detach())
    assert h.removed
    m(x)  # no hook left: nothing stored again
    h.remove()  # twice is harmless
    with hook_outputs([m[0], m[2]]) as hs:
        m(x)
        assert [tuple(o.shape) for o in hs.stored] == [(5, 16), (5, 8)]
        assert len(hs) == 2 and isinstance(hs[1], Hook)
    assert len(m[0]._forward_hooks) == 0 and len(m[2]._forward_hooks) == 0


def test_backward_hook_and_custom_func():
    m = _model()
    with hook_output(m[4], grad=True) as h:
        m(torch.randn(3, 4)).sum().backward()
    assert isinstance(h.stored, list) and h.stored[0].shape == (3, 2)
    assert torch.allclose(h.stored[0], torch.ones(3, 2))
    with Hooks(list(m), lambda mod, i, o: type(mod).__name__) as hs:
        m(torch.randn(1, 4))
    assert hs.stored == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert [tuple(o.shape) for o in dummy_eval_hooks(m, torch.randn(2, 4))][-1] == (2, 2)
    with pytest.raises(TypeError, match="nn.Module"):
        Hook("not a module", print)


def test_hook_callback_records_and_cleans_up():
    seen = []
    cb = HookCallback(hook=lambda m, i, o: seen.append(o.shape[1]))
    learn = _learner(cbs=cb)
    learn.fit(1, 1e-2)
    # 3 Linear layers hooked (ReLU has no parameters): 6 train + 1 valid batches
    assert len(seen) == 3 * 7 and set(seen) == {16, 8, 2}
    assert all(len(m._forward_hooks) == 0 for m in learn.model.modules())


def test_activation_stats_and_color_dim(tmp_path):
    stats = ActivationStats(with_hist=True, include_paramless=True)
    learn = _learner(cbs=stats)
    learn.fit(2, 1e-2)
    assert len(stats.stats) == 12 and len(stats.stats[0]) == 5  # 6 training batches per epoch, 5 leaf layers
    ls = stats.layer_stats(1)
    assert ls["mean"].shape == (12,) and (ls["mean"] >= 0).all()  # a ReLU output
    assert ((ls["near_zero"] >= 0) & (ls["near_zero"] <= 1)).all()
    h = stats.hist(1)
    assert h.shape == (40, 12) and (h >= 0).all()
    import matplotlib.pyplot as plt

    assert stats.color_dim(1) is None  # drawn once, nothing for a notebook to echo
    plt.gcf().savefig(tmp_path / "color_dim.png")
    assert (tmp_path / "color_dim.png").stat().st_size > 1000
    assert stats.plot_layer_stats(0) is None
    stats.plot_layer_stats(0, return_fig=True).savefig(tmp_path / "layer0.png")
    with pytest.raises(IndexError, match="out of range"):
        stats.layer_stats(9)
    with pytest.raises(ValueError, match="with_hist"):
        s2 = ActivationStats()
        _learner(cbs=s2).fit(1, 1e-2)
        s2.hist(0)


def test_summary_shapes_params_macs():
    learn = _learner()
    s = learn.summary()
    text = str(s)
    assert "Linear" in text and "32x16" in text and "Multiply-accumulates" in text
    assert [r["shape"] for r in s.rows] == ["32x16", "32x16", "32x8", "32x8", "32x2"]
    assert [r["params"] for r in s.rows] == [80, 0, 136, 0, 18]
    assert s.total_params == 234 == s.trainable_params
    assert s.total_macs == 4 * 16 + 16 * 8 + 8 * 2
    assert "Adam" in text and "Recorder" in text


def test_summary_frozen_and_conv():
    m = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 5 * 5, 2))
    for p in m[0].parameters():
        p.requires_grad_(False)
    s = model_summary(m, torch.randn(2, 3, 5, 5))
    assert s.rows[0]["trainable"] is False and s.rows[2]["trainable"] is True and s.rows[1]["trainable"] is None
    assert s.rows[0]["macs"] == 4 * 5 * 5 * 3 * 9
    assert s.trainable_params == 4 * 25 * 2 + 2 and s.total_params == s.trainable_params + 3 * 4 * 9 + 4
    assert "False" in s and "Non-trainable params: 112" in s
