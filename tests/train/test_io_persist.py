"""Persistence: one path rule for save / checkpoint / resume / export, loads that validate before they touch
anything, atomic writes (permissions, temp files of killed saves, a full disk), rank-0-only writes."""

import copy
import os
import signal
import stat
import subprocess
import sys
import textwrap

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tiers.data import DataLoaders
from tiers.train import Learner

torch.set_num_threads(1)


def _dls(n=32, shape=(4,)):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, *shape, generator=g)
    y = (x.flatten(1)[:, 0] > 0).long()
    return DataLoaders(DataLoader(TensorDataset(x, y), 8, shuffle=True), DataLoader(TensorDataset(x, y), 16))


def _learn(path, model=None, **kw):
    model = model if model is not None else nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    return Learner(_dls(), model, loss_func=nn.CrossEntropyLoss(), path=path, **kw)


def _snapshot(learn):
    model = {k: v.detach().clone() for k, v in learn.model.state_dict().items()}
    opt = copy.deepcopy(learn.opt.state_dict()) if learn.opt is not None else None
    return model, opt


def _same(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _assert_untouched(learn, snap):
    model, opt = _snapshot(learn)
    assert _same(model, snap[0]), "a failed load changed the model"
    assert _same(opt, snap[1]), "a failed load changed the optimizer"


# ---------------------------------------------------------------- one path rule


def test_save_checkpoint_resume_export_follow_one_rule(tmp_path, monkeypatch):
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # nothing may land in the working directory
    learn = _learn(tmp_path / "proj")
    learn.fit(1, 1e-2)
    models = tmp_path / "proj" / "models"
    assert learn.save("a") == models / "a.pth"
    assert learn.save("runs/a") == models / "runs" / "a.pth"
    assert learn.save_checkpoint("runs/ck") == models / "runs" / "ck.pth"
    assert learn.export() == models / "export.pkl"
    assert learn.export("runs/e.pkl") == models / "runs" / "e.pkl"
    absolute = tmp_path / "abs" / "x.pth"
    assert learn.save(absolute) == absolute and learn.save_checkpoint(tmp_path / "abs" / "c") == tmp_path / "abs" / "c.pth"
    for f in ("a.pth", "runs/a.pth", "runs/ck.pth", "export.pkl", "runs/e.pkl"):
        assert (models / f).is_file(), f
    learn.load("runs/a")
    learn.fit(2, 1e-2, resume="runs/ck")  # the same rule for resume
    assert list(elsewhere.iterdir()) == []


# ---------------------------------------------------------------- validated loads


def _image_learner(path, arch, n_out=3):
    torch.manual_seed(0)
    x = torch.randn(4, 3, 32, 32)
    y = torch.tensor([0, 1, 2, 0])
    dls = DataLoaders(DataLoader(TensorDataset(x, y), 2), DataLoader(TensorDataset(x, y), 2))
    learn = Learner(dls, arch(num_classes=n_out), loss_func=nn.CrossEntropyLoss(), path=path)
    learn.create_opt()
    learn.model.train()
    learn.loss_func(learn.model(x), y).backward()
    learn.opt.step()  # the optimizer has state to lose
    learn.opt.zero_grad()
    return learn


def test_resnet18_weights_into_resnet34_changes_nothing(tmp_path):
    src = _image_learner(tmp_path, torchvision.models.resnet18)
    src.save("r18")
    dst = _image_learner(tmp_path, torchvision.models.resnet34)
    snap = _snapshot(dst)
    with pytest.raises(RuntimeError) as info:
        dst.load("r18")
    msg = str(info.value)
    assert "r18.pth" in msg and "missing" in msg and "layer1.2.conv1.weight" in msg
    _assert_untouched(dst, snap)
    with pytest.raises(RuntimeError):
        dst.load("r18", with_opt=False)
    _assert_untouched(dst, snap)


def test_shape_mismatch_names_the_tensor_and_changes_nothing(tmp_path):
    src = _image_learner(tmp_path, torchvision.models.resnet18, n_out=3)
    src.save("r18_3")
    dst = _image_learner(tmp_path, torchvision.models.resnet18, n_out=5)
    snap = _snapshot(dst)
    with pytest.raises(RuntimeError, match=r"fc\.weight.*\[3, 512\].*\[5, 512\]"):
        dst.load("r18_3")
    _assert_untouched(dst, snap)
    # strict=False skips missing/unexpected keys, never a wrong shape
    with pytest.raises(RuntimeError, match=r"fc\.weight"):
        dst.load("r18_3", strict=False)
    _assert_untouched(dst, snap)


def test_with_opt_error_comes_before_any_weight_is_loaded(tmp_path):
    src = _learn(tmp_path)
    src.fit(1, 1e-2)
    src.save("noopt", with_opt=False)
    dst = _learn(tmp_path)
    dst.fit(1, 1e-2)
    snap = _snapshot(dst)
    with pytest.raises(ValueError, match="with_opt=False"):
        dst.load("noopt")
    _assert_untouched(dst, snap)
    dst.load("noopt", with_opt=False)
    assert _same(_snapshot(dst)[0], _snapshot(src)[0])


def test_optimizer_state_that_does_not_fit_changes_nothing(tmp_path):
    # same weights layout, but the optimizer was built over different parameter groups
    src = _learn(tmp_path, splitter=lambda m: [list(m[0].parameters()), list(m[2].parameters())])
    src.fit(1, 1e-2)
    src.save("groups")
    dst = _learn(tmp_path)
    dst.fit(1, 1e-2)
    snap = _snapshot(dst)
    with pytest.raises(ValueError, match="optimizer"):
        dst.load("groups")
    _assert_untouched(dst, snap)


def test_good_load_restores_model_and_optimizer(tmp_path):
    src = _learn(tmp_path)
    src.fit(1, 1e-2)
    src.save("good")
    want = _snapshot(src)
    dst = _learn(tmp_path)
    dst.fit(1, 1e-2)
    dst.load("good")
    got = _snapshot(dst)
    assert _same(got[0], want[0]) and _same(got[1]["state"], want[1]["state"])


# ---------------------------------------------------------------- atomic writes


def test_saved_checkpointed_exported_files_get_umask_permissions(tmp_path):
    learn = _learn(tmp_path)
    learn.fit(1, 1e-2)
    old = os.umask(0o022)
    try:
        files = [learn.save("p"), learn.save_checkpoint("pc"), learn.export("pe.pkl")]
    finally:
        os.umask(old)
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o644, f


_KILLED_SAVE = textwrap.dedent("""
    import sys, time, torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset
    from tiers.data import DataLoaders
    from tiers.train import Learner

    class Stall:
        # pickled while torch.save writes the file: the process is killed right there, mid-write
        def __reduce__(self):
            print("WRITING", flush=True)
            time.sleep(120)
            return (int, (0,))

    model = nn.Linear(4, 2)
    model._register_state_dict_hook(lambda m, sd, prefix, meta: sd.__setitem__("stall", Stall()))
    x = torch.randn(8, 4)
    dls = DataLoaders(DataLoader(TensorDataset(x, x[:, 0].long()), 4), DataLoader(TensorDataset(x, x[:, 0].long()), 4))
    learn = Learner(dls, model, loss_func=nn.CrossEntropyLoss(), path=sys.argv[1])
    getattr(learn, sys.argv[2])("m")
""")


@pytest.mark.parametrize("method", ["save", "save_checkpoint"])
def test_save_killed_mid_write_keeps_old_file_and_next_save_removes_its_temp(tmp_path, method):
    learn = _learn(tmp_path, model=nn.Linear(4, 2))
    good = getattr(learn, method)("m")
    before = good.read_bytes()
    p = subprocess.Popen([sys.executable, "-c", _KILLED_SAVE, str(tmp_path), method], stdout=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout.readline().strip() == "WRITING"
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    models = tmp_path / "models"
    temps = [f for f in models.iterdir() if f.name.startswith(".m.pth.")]
    assert len(temps) == 1 and good.read_bytes() == before  # the kill left a temp, the good file is intact
    getattr(learn, method)("m")
    assert [f.name for f in models.iterdir()] == ["m.pth"]


_LIMITED_SAVE = textwrap.dedent("""
    import resource, signal, sys, torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset
    from tiers.data import DataLoaders
    from tiers.train import Learner

    x = torch.randn(8, 4)
    dls = DataLoaders(DataLoader(TensorDataset(x, x[:, 0].long()), 4), DataLoader(TensorDataset(x, x[:, 0].long()), 4))
    learn = Learner(dls, nn.Linear(4, 2), loss_func=nn.CrossEntropyLoss(), path=sys.argv[1])
    learn.save("m")  # small: fits under the limit
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
    learn.model = nn.Linear(400, 400)  # 640 kB of weights: over the limit
    try:
        getattr(learn, sys.argv[2])("m" if sys.argv[2] != "export" else "m.pkl")
    except OSError as e:
        print("OSERROR", e.errno)
        print(e)
""")


@pytest.mark.parametrize("method", ["save", "save_checkpoint", "export"])
def test_file_size_limit_says_disk_full_and_keeps_old_file(tmp_path, method):
    r = subprocess.run([sys.executable, "-c", _LIMITED_SAVE, str(tmp_path), method], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    target = tmp_path / "models" / ("m.pkl" if method == "export" else "m.pth")
    assert "OSERROR 27" in r.stdout and f"could not write {target}: file too large / disk full" in r.stdout
    assert "inline_container" not in r.stdout
    learn = _learn(tmp_path, model=nn.Linear(4, 2))
    if method == "save":
        learn.load("m", with_opt=False)  # the old file is intact
    assert [f.name for f in (tmp_path / "models").iterdir() if f.name.startswith(".")] == []


# ---------------------------------------------------------------- rank 0 writes, decided in one place


@pytest.mark.parametrize("method,arg", [("save", "r"), ("save_checkpoint", "r"), ("export", "r.pkl")])
def test_only_rank_0_writes(tmp_path, monkeypatch, method, arg):
    learn = _learn(tmp_path)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    path = getattr(learn, method)(arg)
    assert path.parent == tmp_path / "models" and not path.exists()
    monkeypatch.setenv("RANK", "0")
    assert getattr(learn, method)(arg).exists()
