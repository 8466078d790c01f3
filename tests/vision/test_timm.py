"""timm architectures in vision_learner (extra tiers-vision[timm]): names and functions, cut and head, parameter
groups and freezing, n_in, pretrained weights through timm's own loading, export/load_learner, the missing extra."""

import functools
import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from tiers.data import Normalize, get_image_files
from tiers.tensors import set_seed
from tiers.train import AdaptiveConcatPool2d, accuracy
from tiers.vision import ImageDataLoaders, PILImageBW, Resize, vision_learner

needs_timm = pytest.mark.skipif(importlib.util.find_spec("timm") is None,
                                reason="timm is an optional extra (tiers-vision[timm])")
_PAT = r"^([^/]+)_\d+.jpg$"
_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pets_dls(pets_path):
    fnames = get_image_files(pets_path / "images")
    return ImageDataLoaders.from_name_re(pets_path, fnames, pat=_PAT, item_tfms=Resize(32), bs=8, device="cpu",
                                         seed=0)


def _group_ids(learn) -> list[set[int]]:
    return [{id(p) for p in g} for g in learn.splitter(learn.model)]


def _check_groups_and_freezing(learn) -> None:
    groups = _group_ids(learn)
    assert len(groups) == 3, "early body, late body, head: what discriminative learning rates need"
    every = [id(p) for p in learn.model.parameters()]
    assert sorted(i for g in groups for i in g) == sorted(every), "each parameter in exactly one group"
    head = {id(p) for p in learn.model[1].parameters()}
    assert groups[-1] == head
    learn.create_opt()
    assert len(learn.opt.param_groups) == 3
    learn.opt.set_hyper("lr", slice(1e-5, 1e-3))  # discriminative learning rates: one per group
    assert [g["lr"] for g in learn.opt.param_groups] == pytest.approx([1e-5, 1e-4, 1e-3])
    learn.freeze()
    frozen = {id(p) for p in learn.model.parameters() if not p.requires_grad}
    weights = [p for p in learn.model[0].parameters() if p.ndim > 1]
    assert weights and all(id(p) in frozen for p in weights), "frozen: no conv/linear weight of the body trains"
    assert all(p.requires_grad for p in learn.model[1].parameters()), "the head trains"
    learn.unfreeze()
    assert all(p.requires_grad for p in learn.model.parameters())


@needs_timm
@pytest.mark.slow
def test_timm_cnn_by_name_builds_body_head_groups_and_fine_tunes(pets_dls):
    from tiers.vision.timm import TimmBody

    set_seed(0)
    learn = vision_learner(pets_dls, "resnet10t", pretrained=False, metrics=accuracy, lin_ftrs=[32])
    body, head = learn.model
    assert isinstance(body, TimmBody) and body.needs_pool
    assert isinstance(head[0], AdaptiveConcatPool2d), "a CNN's feature map is pooled by the tiers head"
    x, _ = pets_dls.one_batch()
    assert body(x).shape == (8, 512, 1, 1)
    assert learn.model(x).shape == (8, 4)
    assert not any(isinstance(t, Normalize) for t in pets_dls.train.after_batch.fs), "fresh model: no stats added"
    _check_groups_and_freezing(learn)
    before = body.model.conv1[0].weight.detach().clone()
    learn.fine_tune(1, 1e-3)
    assert len(learn.recorder.values) == 1 and all(torch.isfinite(torch.tensor(learn.recorder.values[0])))
    assert not torch.equal(before, body.model.conv1[0].weight), "the unfrozen epoch trained the body"


@needs_timm
@pytest.mark.slow
def test_timm_vit_takes_create_model_kwargs_and_fine_tunes(pets_dls):
    set_seed(0)
    learn = vision_learner(pets_dls, "vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8,
                           metrics=accuracy)
    body, head = learn.model
    assert body.model.patch_embed.img_size == (32, 32), "img_size= and patch_size= went to timm.create_model"
    assert not body.needs_pool and not any(isinstance(m, AdaptiveConcatPool2d) for m in head.modules())
    x, _ = pets_dls.one_batch()
    assert body(x).shape == (8, 192), "a token model gives timm's pooled features"
    _check_groups_and_freezing(learn)
    learn.fine_tune(1, 1e-3, freeze_epochs=1)
    assert len(learn.recorder.values) == 1 and torch.isfinite(torch.tensor(learn.recorder.values[0])).all()


@needs_timm
def test_timm_names_functions_prefix_and_channels(mnist_path, pets_dls):
    import timm

    from tiers.vision.timm import TimmBody

    mnist = ImageDataLoaders.from_folder(mnist_path, bs=8, device="cpu", img_cls=PILImageBW)
    learn = vision_learner(mnist, "resnet10t", pretrained=False)
    assert learn.model[0].model.conv1[0].in_channels == 1, "n_in follows the data (timm's in_chans)"
    assert learn.model(torch.randn(2, 1, 28, 28)).shape == (2, 2)
    four = vision_learner(pets_dls, "convnext_atto", pretrained=False, n_in=4, n_out=3)
    assert four.model(torch.randn(2, 4, 32, 32)).shape == (2, 3)
    # a timm model function, as is or inside a partial (whose keywords count)
    fn = vision_learner(pets_dls, timm.models.resnet10t, pretrained=False)
    assert isinstance(fn.model[0], TimmBody)
    part = vision_learner(pets_dls, functools.partial(timm.models.vit_tiny_patch16_224, img_size=32, patch_size=8),
                          pretrained=False)
    assert part.model(torch.randn(2, 3, 32, 32)).shape == (2, 4)
    # names torchvision knows keep their meaning; 'timm/<name>' or timm keyword arguments choose timm's model
    assert type(vision_learner(pets_dls, "resnet18", pretrained=False).model[0]) is nn.Sequential
    assert isinstance(vision_learner(pets_dls, "timm/resnet18", pretrained=False).model[0], TimmBody)
    assert isinstance(vision_learner(pets_dls, "resnet18", pretrained=False, drop_rate=0.1).model[0], TimmBody)
    # a cut: the plain children before it, pooled by the head, split as body and head
    cut = vision_learner(pets_dls, "resnet10t", pretrained=False, cut=-2)
    assert cut.model(torch.randn(2, 3, 32, 32)).shape == (2, 4) and len(cut.splitter(cut.model)) == 2


@needs_timm
def test_timm_bad_arguments_are_refused_clearly(pets_dls):
    with pytest.raises(ValueError, match=r"'vit_tiny_patch16' is not an architecture.*timm.*vit_tiny_patch16_224"):
        vision_learner(pets_dls, "vit_tiny_patch16", pretrained=False)
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['img_size'\].*timm"):
        vision_learner(pets_dls, "xresnet18", pretrained=False, img_size=32)
    with pytest.raises(TypeError, match="weights=.*pretrained_cfg_overlay"):
        vision_learner(pets_dls, "resnet10t", pretrained=False, weights="DEFAULT")


@needs_timm
def test_timm_pretrained_weights_load_through_timm(pets_dls, mnist_path, tmp_path):
    # timm's own loader with a local file (what an offline user does): the body holds the file's values, the learner
    # starts frozen and the batches get the statistics the weights were trained with.
    import timm
    from safetensors.torch import save_file

    ref = timm.create_model("resnet10t", pretrained=False)
    f = tmp_path / "resnet10t.safetensors"
    save_file(ref.state_dict(), str(f))
    dls = ImageDataLoaders.from_name_re(pets_dls.path, get_image_files(pets_dls.path / "images"), pat=_PAT,
                                        item_tfms=Resize(32), bs=8, device="cpu", seed=0)
    learn = vision_learner(dls, "resnet10t", pretrained=True, pretrained_cfg_overlay=dict(file=str(f)))
    torch.testing.assert_close(learn.model[0].model.layer1[0].conv1.weight, ref.layer1[0].conv1.weight)
    norms = [t for t in dls.train.after_batch.fs if isinstance(t, Normalize)]
    assert len(norms) == 1
    cfg = ref.pretrained_cfg
    torch.testing.assert_close(norms[0].mean.flatten().cpu(), torch.tensor(cfg["mean"]))
    torch.testing.assert_close(norms[0].std.flatten().cpu(), torch.tensor(cfg["std"]))
    trainable = {n.split(".")[0] for n, p in learn.model.named_parameters() if p.requires_grad and p.ndim > 1}
    assert trainable == {"1"}, "pretrained: frozen, only the head trains"
    # one-channel images: timm adapts the pretrained first conv (RGB weights summed), the rest is loaded as is
    grey = ImageDataLoaders.from_folder(mnist_path, bs=8, device="cpu", img_cls=PILImageBW)
    bw = vision_learner(grey, "resnet10t", pretrained=True, pretrained_cfg_overlay=dict(file=str(f)))
    first = bw.model[0].model.conv1[0].weight
    assert first.shape[1] == 1
    torch.testing.assert_close(first, ref.conv1[0].weight.sum(dim=1, keepdim=True))
    torch.testing.assert_close(bw.model[0].model.layer2[0].conv1.weight, ref.layer2[0].conv1.weight)
    assert not any(isinstance(t, Normalize) for t in grey.train.after_batch.fs), "RGB statistics do not fit 1 channel"


def _run(code: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}, cwd=cwd, timeout=240)


@needs_timm
@pytest.mark.slow
def test_timm_pretrained_offline_without_cache_says_what_to_do(pets_path, tmp_path):
    # An empty Hugging Face cache and no network: a clear error naming the cache and the ways out, not a hang.
    code = f"""
        from tiers.data import get_image_files
        from tiers.vision import ImageDataLoaders, Resize, vision_learner
        dls = ImageDataLoaders.from_name_re({str(pets_path)!r}, get_image_files({str(pets_path / "images")!r}),
                                            pat={_PAT!r}, item_tfms=Resize(32), bs=8, device="cpu", seed=0)
        try:
            vision_learner(dls, "resnet10t", pretrained=True)
        except RuntimeError as e:
            print("ERROR:", e)
    """
    out = _run(code, env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    assert out.returncode == 0, out.stderr
    msg = out.stdout.split("ERROR:", 1)[-1]
    assert "resnet10t" in msg and "pretrained=False" in msg and "pretrained_cfg_overlay" in msg, out.stdout
    assert str(tmp_path / "hf") in msg and "timm/resnet10t" in msg, "names the cache and the repo to fill it from"


@needs_timm
@pytest.mark.slow
def test_timm_learner_exports_and_loads_in_a_fresh_process(mnist_path, tmp_path):
    dls = ImageDataLoaders.from_folder(mnist_path, bs=16, device="cpu", img_cls=PILImageBW)
    learn = vision_learner(dls, "resnet10t", pretrained=False)
    learn.fit(1, 1e-3)
    fname = tmp_path / "timm.pkl"
    learn.export(fname)
    img = get_image_files(mnist_path / "valid")[0]
    ref = learn.predict(img)[2]
    # the safe default loader: timm's model classes are on tiers.vision's list of what a vision export may name
    code = f"""
        from tiers.train import load_learner
        learn = load_learner({str(fname)!r})
        print(type(learn.model[0]).__name__, learn.predict({str(img)!r})[2].tolist())
    """
    out = _run(code)
    assert out.returncode == 0, out.stderr
    kind, probs = out.stdout.strip().split(" ", 1)
    assert kind == "TimmBody"
    torch.testing.assert_close(torch.tensor(eval(probs)), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_without_timm_the_error_names_the_extra(mnist_path):
    # timm blocked (as if not installed): tiers.vision imports, its own archs work, and a timm model says what to
    # install; importing tiers.vision never imports timm.
    code = f"""
        import sys
        sys.modules["timm"] = None
        from tiers.vision import ImageDataLoaders, PILImageBW, vision_learner, xresnet18
        from tiers.vision.timm import create_timm_model
        dls = ImageDataLoaders.from_folder({str(mnist_path)!r}, bs=8, device="cpu", img_cls=PILImageBW)
        vision_learner(dls, xresnet18, pretrained=False)
        try:
            vision_learner(dls, "convnext_atto", pretrained=False)
        except ValueError as e:
            print("NAME:", e)
        try:
            create_timm_model("convnext_atto", 2, pretrained=False)
        except ModuleNotFoundError as e:
            print("MODULE:", type(e).__name__, e)
    """
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert "NAME: arch='convnext_atto' is not an architecture tiers or torchvision knows" in out.stdout
    assert out.stdout.count('pip install "tiers-vision[timm]"') == 2 and "MODULE: MissingExtraError" in out.stdout, out.stdout
    probe = _run("import sys, tiers.vision.all; print('timm' in sys.modules)")
    assert probe.stdout.strip() == "False", probe.stderr
