"""AUDIT B10: a weights file saved by fastai's default `learn.save()` (model + optimizer state whose hypers are a
`fastcore.foundation.L`) loads with the safe `learn.load` in a process where fastcore does not exist; an
unsupported global gets a clear error without terminal escape codes.

The file is built here WITHOUT fastai: a tiny class that pickles under the name `fastcore.foundation.L` (registered
in `sys.modules` only while saving), in fastai's optimizer state layout."""

import json
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
import torch
from torch import nn

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[2]


class L:
    """Pickles as fastcore's L does: class `fastcore.foundation.L`, state `{'items': [...]}`."""

    def __init__(self, items):
        self.items = list(items)


L.__module__, L.__qualname__ = "fastcore.foundation", "L"


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def _fastai_file(path: Path, model: nn.Module, hypers: list[dict], per_param: list[dict]) -> Path:
    fake = types.ModuleType("fastcore.foundation")
    fake.L = L
    pkg = types.ModuleType("fastcore")
    saved = {k: sys.modules.get(k) for k in ("fastcore", "fastcore.foundation")}
    sys.modules.update({"fastcore": pkg, "fastcore.foundation": fake})
    try:
        state = {"model": model.state_dict(), "opt": {"state": per_param, "hypers": L(hypers)}}
        torch.save(state, path)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return path


def _adam_state(model: nn.Module, groups: int = 1) -> tuple[list[dict], list[dict]]:
    hypers = [{"wd": 0.01, "sqr_mom": 0.99, "lr": 2e-3, "mom": 0.9, "eps": 1e-5} for _ in range(groups)]
    per_param = []
    for i, p in enumerate(model.parameters()):
        st = {"grad_avg": torch.full_like(p, 0.1 * (i + 1)), "sqr_avg": torch.full_like(p, 0.01), "step": 7}
        if p.ndim == 1:
            st["do_wd"] = False  # fastai's wd_bn_bias=False marks biases this way
        per_param.append(st)
    return hypers, per_param


_LOADER = textwrap.dedent("""
    import json, sys, warnings
    import torch
    from torch import nn
    from tiers.data import Datasets, ItemGetter, Categorize, IndexSplitter
    from tiers.train import Learner
    assert "fastcore" not in sys.modules
    g = torch.Generator().manual_seed(0)
    items = [[x, "pos" if x[0] > 0 else "neg"] for x in torch.randn(20, 3, generator=g)]
    dsets = Datasets(items, [[ItemGetter(0)], [ItemGetter(1), Categorize()]], splits=IndexSplitter(range(16, 20))(items))
    torch.manual_seed(1)   # other weights than the file's
    learn = Learner(dsets.dataloaders(bs=4), nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)),
                    path=sys.argv[1])
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        learn.load(sys.argv[2], with_opt=sys.argv[3] == "1")
    sd = learn.opt.state_dict() if learn.opt is not None else None
    out = {
        "weights": {k: v.tolist() for k, v in learn.model.state_dict().items()},
        "opt_state": {str(k): {n: (v.tolist() if torch.is_tensor(v) else v) for n, v in st.items()}
                      for k, st in (sd["state"].items() if sd else [])},
        "groups": [{k: v for k, v in g.items()} for g in sd["param_groups"]] if sd else None,
    }
    ok_step = True
    if sd is not None and sd["state"]:
        learn.fit(1, 1e-3)   # the converted state steps
        ok_step = all(bool(torch.isfinite(p).all()) for p in learn.model.parameters())
        ok_step = ok_step and learn.opt.state_dict()["state"][0]["step"] > 7
    out.update({
        "warnings": [str(x.message) for x in w if "fastai" in str(x.message)],
        "fastcore_imported": "fastcore" in sys.modules, "ok_step": ok_step,
    })
    print(json.dumps(out))
""")


def _load_fresh(tmp_path: Path, name: str, with_opt: bool = True) -> dict:
    res = subprocess.run([sys.executable, "-c", _LOADER, str(tmp_path), name, "1" if with_opt else "0"],
                         capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_fastai_checkpoint_with_optimizer_loads_weights_and_opt_state(tmp_path):
    model = _model()
    hypers, per_param = _adam_state(model)
    (tmp_path / "models").mkdir()
    _fastai_file(tmp_path / "models" / "stage1.pth", model, hypers, per_param)
    out = _load_fresh(tmp_path, "stage1")
    assert not out["fastcore_imported"]
    assert out["weights"] == {k: v.tolist() for k, v in model.state_dict().items()}
    assert out["warnings"] == []
    assert out["groups"][0]["params"] == [0, 1, 2, 3]
    assert {k: out["groups"][0][k] for k in hypers[0]} != {} and out["groups"][0]["sqr_mom"] == 0.99
    first = out["opt_state"]["0"]
    assert first["step"] == 7 and torch.allclose(torch.tensor(first["grad_avg"]), torch.full((4, 3), 0.1))
    assert out["opt_state"]["3"]["grad_avg"] == pytest.approx([0.4] * 2)
    assert out["opt_state"]["1"]["do_wd"] is False and out["ok_step"]


def test_fastai_checkpoint_with_another_optimizer_skips_opt_state_with_warning(tmp_path):
    model = _model()
    hypers, per_param = _adam_state(model)
    hypers = [{"lr": 1e-2, "mom": 0.9, "wd": 0.0}]  # fastai SGD: other hyper-parameters than tiers' default Adam
    per_param = [{"grad_avg": torch.zeros_like(p)} for p in model.parameters()]
    (tmp_path / "models").mkdir()
    _fastai_file(tmp_path / "models" / "sgd.pth", model, hypers, per_param)
    out = _load_fresh(tmp_path, "sgd")
    assert out["weights"] == {k: v.tolist() for k, v in model.state_dict().items()}
    assert len(out["warnings"]) == 1
    msg = out["warnings"][0]
    assert "fastai" in msg and "skipped" in msg and "with_opt=False" in msg and "hyper-parameters" in msg
    # with_opt=False: the weights, no warning
    out2 = _load_fresh(tmp_path, "sgd", with_opt=False)
    assert out2["warnings"] == [] and out2["weights"] == out["weights"]


class Unknown:
    """A global no safe load knows."""

    def __init__(self):
        self.x = 1


def test_unsupported_global_error_names_class_file_and_fix(tmp_path):
    from tiers.train import load_model

    model = _model()
    f = tmp_path / "odd.pth"
    torch.save({"model": model.state_dict(), "opt": Unknown()}, f)
    before = {k: v.clone() for k, v in _model().state_dict().items()}
    target = _model()
    with pytest.raises(ValueError) as ei:
        load_model(f, target)
    msg = str(ei.value)
    assert "\x1b" not in msg
    assert "test_fastai_checkpoint.Unknown" in msg and str(f) in msg and "trusted=True" in msg
    assert all(torch.equal(v, before[k]) for k, v in target.state_dict().items())  # nothing was loaded
    load_model(f, target, trusted=True)  # the documented fix for a file one trusts
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in target.state_dict().items())
