"""Hyper-parameter views and the value rules of set_hyper (broadcast, lists, slices)."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import tiers.optim
from tiers.optim import HyperView, detuplify_pg, set_item_pg, spread_values


def test_detuplify_and_set_item():
    pg = {"params": [1], "lr": 0.1, "betas": (0.9, 0.99), "param_names": ["w"]}
    assert detuplify_pg(pg) == {"lr": 0.1, "betas__0": 0.9, "betas__1": 0.99}
    assert set_item_pg(pg, "betas__1", 0.95)["betas"] == (0.9, 0.95)
    assert set_item_pg(pg, "eps", 1e-8)["eps"] == 1e-8
    with pytest.raises(IndexError, match="betas__2"):
        set_item_pg(pg, "betas__2", 0.5)


def test_hyper_view_maps_names_and_writes_through():
    group = {"params": [], "lr": 0.1, "betas": (0.9, 0.99), "momentum_decay": 4e-3}
    view = HyperView(group, {"betas__0": "mom", "betas__1": "sqr_mom"}, split_tuples=True)
    assert dict(view) == {"lr": 0.1, "mom": 0.9, "sqr_mom": 0.99, "momentum_decay": 4e-3}
    assert len(view) == 4 and "mom" in view and "betas__0" not in view
    view["mom"] = 0.5
    view["new"] = 1
    assert group["betas"] == (0.5, 0.99) and group["new"] == 1
    del view["new"]
    assert "new" not in group
    with pytest.raises(KeyError):
        view["missing"]
    with pytest.raises(KeyError):
        del view["mom"]  # one item of a tuple hyper cannot be removed
    assert repr(view).startswith("{'lr': 0.1")


def test_spread_values_rules():
    assert spread_values("lr", 0.1, 3) == [0.1] * 3
    assert spread_values("lr", [0.1], 2) == [0.1, 0.1]
    assert spread_values("lr", (1, 2), 2) == [1, 2]
    assert spread_values("lr", torch.tensor([1.0, 2.0]), 2) == [1.0, 2.0]
    assert spread_values("lr", torch.tensor(0.5), 2) == [torch.tensor(0.5)] * 2
    assert spread_values("lr", slice(1e-3), 3) == pytest.approx([1e-4, 1e-4, 1e-3])
    assert spread_values("lr", slice(0, 1e-3), 2) == pytest.approx([1e-4, 1e-3])  # a falsy start, as fastai
    assert spread_values("lr", slice(1e-5, 1e-3), 1) == [1e-3]
    with pytest.raises(ValueError, match="no step"):
        spread_values("lr", slice(1e-5, 1e-3, 2), 3)
    with pytest.raises(ValueError, match="same sign"):
        spread_values("lr", slice(-1e-5, 1e-3), 3)
    with pytest.raises(ValueError, match="got 3 values for 2 parameter groups"):
        spread_values("wd", [1, 2, 3], 2)
    with pytest.raises(TypeError, match="got the string '1e-3'; pass a number"):
        spread_values("lr", "1e-3", 2)  # what `fit(1, lr="1e-3")` would otherwise fail on mid-step
    with pytest.raises(TypeError, match="string"):
        spread_values("lr", [1e-3, "1e-2"], 2)
    assert spread_values("level", "layer", 2) == ["layer", "layer"]  # a string option is not a typo'd number


@given(st.floats(1e-7, 1.0), st.floats(1e-7, 1.0), st.integers(2, 12))
def test_slice_spread_is_geometric(start, stop, n):
    vals = spread_values("lr", slice(start, stop), n)
    assert len(vals) == n and vals[0] == start and vals[-1] == stop
    ratios = [b / a for a, b in zip(vals, vals[1:])]
    assert all(math.isclose(r, ratios[0], rel_tol=1e-9) for r in ratios)


def test_every_public_name_resolves_and_is_documented():
    for name in tiers.optim.__all__:
        obj = getattr(tiers.optim, name)
        if callable(obj):
            assert (obj.__doc__ or "").strip(), f"{name} has no docstring"
    assert len(set(tiers.optim.__all__)) == len(tiers.optim.__all__)


@pytest.mark.parametrize("fwd,split", [({}, False), ({"momentum": "mom", "weight_decay": "wd"}, True),
                                       ({"betas__0": "mom", "betas__1": "sqr_mom"}, True),
                                       ({"lr_scale": "lr"}, False), ({"lr": "learning_rate"}, False)])
def test_hyper_view_key_lookup_matches_the_full_search(fwd, split):
    # The shortcut for a key shown under its own name must find what searching the flattened group finds, also when
    # another key is shown under that name or the key itself is renamed.
    group = {"params": [], "lr_scale": 2.0, "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0, "betas": (0.9, 0.99)}
    view = HyperView(group, fwd, split)
    names = {*group, *fwd.values(), "betas__0", "mom", "missing"}
    for k in names:
        full = next((tk for tk in view._flat() if view._fwd.get(tk, tk) == k), None)
        assert view._source_key(k) == full, k
