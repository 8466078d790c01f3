"""vision_learner / unet_learner: bodies, heads, splitters, freezing, pretrained weights from the cache."""

from functools import partial

import pytest
import torch
import torchvision
from torch import nn

from tiers.data import Normalize, get_image_files
from tiers.tensors import set_seed
from tiers.train import accuracy
from tiers.vision import (
    DynamicUnet,
    ImageDataLoaders,
    PILImageBW,
    SegmentationDataLoaders,
    acc_segment,
    aug_transforms,
    cnn_learner,
    create_body,
    create_head,
    has_pool_type,
    model_meta,
    pretrained_weights_path,
    unet_learner,
    vision_learner,
    xresnet18,
)


@pytest.fixture(scope="module")
def mnist_dls(mnist_path):
    return ImageDataLoaders.from_folder(mnist_path, bs=16, device="cpu", img_cls=PILImageBW,
                                       batch_tfms=aug_transforms(do_flip=False, max_warp=0))


_small_xresnet = partial(xresnet18, widen=0.25)


def test_create_head_layout():
    head = create_head(64, 10)
    kinds = [type(m).__name__ for m in head]
    assert kinds[:2] == ["AdaptiveConcatPool2d", "Flatten"]
    lins = [m for m in head.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in lins] == [(128, 512), (512, 10)]
    drops = [m.p for m in head.modules() if isinstance(m, nn.Dropout)]
    assert drops == [0.25, 0.5]
    assert create_head(64, 3, concat_pool=False, lin_ftrs=[], ps=0.1, y_range=(0, 1))(torch.randn(2, 64, 3, 3)).max() <= 1
    with pytest.raises(ValueError, match="dropout"):
        create_head(8, 2, lin_ftrs=[4], ps=[0.1, 0.2, 0.3])


def test_create_body_cuts_before_pooling_and_adapts_channels():
    r = torchvision.models.resnet18()
    w = r.conv1.weight.detach().clone()
    body = create_body(r, n_in=1, pretrained=True)
    assert not has_pool_type(body[-1]) and len(body) == 8
    torch.testing.assert_close(body[0].weight, w.sum(1, keepdim=True))
    assert body(torch.randn(1, 1, 64, 64)).shape == (1, 512, 2, 2)
    r4 = torchvision.models.resnet18()
    body4 = create_body(r4, n_in=4, pretrained=True, cut=-2)
    assert body4[0].weight.shape[1] == 4 and (body4[0].weight[:, 3] == 0).all()
    with pytest.raises(ValueError, match="cut="):
        create_body(nn.Sequential(nn.Linear(2, 2)))


def test_model_meta_knows_resnets_and_xresnets():
    assert model_meta[torchvision.models.resnet34]["cut"] == -2
    assert model_meta[xresnet18]["cut"] == -4


@pytest.mark.slow
def test_vision_learner_trains_and_splits(mnist_dls):
    set_seed(0)
    learn = vision_learner(mnist_dls, _small_xresnet, pretrained=False, metrics=accuracy, lin_ftrs=[32])
    body, head = learn.model
    assert isinstance(body[0], nn.Module) and body[0][0].in_channels == 1, "n_in follows the data (1 channel)"
    assert head[-1].out_features == 2
    assert not any(isinstance(t, Normalize) for t in mnist_dls.train.after_batch.fs), "fresh model: no ImageNet stats"
    learn.create_opt()
    assert len(learn.opt.param_lists) == 3, "stem, rest of the body, head"
    learn.freeze()
    frozen = [p.requires_grad for p in learn.model[0][0][0].parameters() if p.ndim > 1]
    assert not any(frozen) and all(p.requires_grad for p in learn.model[1].parameters())
    learn.unfreeze()
    learn.fit_one_cycle(4, 5e-3)
    assert learn.recorder.values[-1][-1] >= 0.85  # 3s and 7s apart after a few tiny epochs
    learn.show_results(max_n=4)


def test_arch_by_name_and_predict_on_any_image_input(mnist_dls, mnist_path):
    import numpy as np
    from PIL import Image

    learn = vision_learner(mnist_dls, "xresnet18", pretrained=False)  # a name, as fastai takes timm names
    assert learn.model(torch.randn(2, 1, 32, 32)).shape == (2, 2)
    assert type(vision_learner(mnist_dls, "resnet18", pretrained=False).model[0][0]) is nn.Conv2d
    with pytest.raises(ValueError, match="'vit_tiny_patch16' is not an architecture.*timm"):
        vision_learner(mnist_dls, "vit_tiny_patch16", pretrained=False)
    fn = get_image_files(mnist_path / "valid")[0]
    ref = learn.predict(fn)
    for inp in (str(fn), fn.read_bytes(), Image.open(fn), np.asarray(Image.open(fn))):  # what users pass
        got = learn.predict(inp)
        assert got[0] == ref[0] and torch.allclose(got[2], ref[2], atol=1e-5)
    with pytest.raises(TypeError, match=r"fits no step.*str, PathLike.*Path\(x\)"):
        learn.predict(3.5)


def test_vision_learner_on_a_torchvision_arch(mnist_dls):
    learn = vision_learner(mnist_dls, torchvision.models.resnet18, pretrained=False, n_out=5)
    assert learn.model[1][-1].out_features == 5
    assert learn.model(torch.randn(2, 1, 32, 32)).shape == (2, 5)
    with pytest.warns(DeprecationWarning, match="vision_learner"):
        cnn_learner(mnist_dls, _small_xresnet, pretrained=False)
    with pytest.raises(ValueError, match="no pretrained weights"):
        vision_learner(mnist_dls, _small_xresnet, pretrained=True)


def test_pretrained_weights_come_from_the_cache(mnist_dls, tmp_path, monkeypatch):
    # A weights file in torch hub's cache is used without any download; the body holds its values.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    arch = torchvision.models.resnet18
    dest = pretrained_weights_path(arch)
    assert dest.parent == tmp_path / "hub" / "checkpoints"
    dest.parent.mkdir(parents=True)
    ref = arch()
    torch.save(ref.state_dict(), dest)
    dls = ImageDataLoaders.from_folder(mnist_dls.path, bs=8, device="cpu", img_cls=PILImageBW)
    learn = vision_learner(dls, arch, pretrained=True, n_in=3)
    torch.testing.assert_close(learn.model[0][4][0].conv1.weight, ref.layer1[0].conv1.weight)
    assert any(isinstance(t, Normalize) for t in dls.train.after_batch.fs), "pretrained: ImageNet normalisation added"
    # pretrained learners start frozen: only the head (and norm layers) train
    trainable = {n.split(".")[0] for n, p in learn.model.named_parameters() if p.requires_grad and p.ndim > 1}
    assert trainable == {"1"}


def test_pretrained_without_cache_or_network_says_what_to_do(mnist_dls, tmp_path, monkeypatch):
    # An empty cache and no way out (every proxy refuses): a clear error naming the file to provide.
    import urllib.request

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    # urlopen's global opener caches the proxies it sees first: let this test's dead proxy go with the test
    monkeypatch.setattr(urllib.request, "_opener", None)
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with pytest.raises(RuntimeError, match="pretrained=False") as e:
        vision_learner(mnist_dls, torchvision.models.resnet18, pretrained=True)
    assert str(tmp_path) in str(e.value)


def test_unet_learner_segments(camvid_path):
    import numpy as np

    codes = np.loadtxt(camvid_path / "codes.txt", dtype=str)
    dls = SegmentationDataLoaders.from_label_func(
        camvid_path, get_image_files(camvid_path / "images"), lambda o: camvid_path / "labels" / f"{o.stem}_P{o.suffix}",
        codes=codes, bs=4, device="cpu", seed=0)
    learn = unet_learner(dls, partial(xresnet18, widen=0.25), pretrained=False, metrics=acc_segment)
    assert isinstance(learn.model, DynamicUnet)
    x, y = dls.one_batch()
    assert learn.model(x).shape == (4, 4, 72, 96), "n_out from the mask codes"
    learn.fit(1, 1e-3)
    learn.show_results(max_n=2)


def test_acc_segment_ignores_void():
    inp = torch.zeros(1, 3, 2, 2)
    inp[0, 1] = 1.0  # predicts class 1 everywhere
    targ = torch.tensor([[[1, 1], [0, 2]]])
    assert acc_segment(inp, targ).item() == 0.5
    assert acc_segment(inp, targ, void_code=0).item() == pytest.approx(2 / 3)


def test_torchvision_archs_are_importable_from_tiers_and_lazy(mnist_dls, tmp_path, monkeypatch):
    import pickle
    import subprocess
    import sys

    from tiers.vision import resnet18, resnet34, resolve_arch

    # the paper's `vision_learner(dls, resnet34)` after `from tiers.vision.all import *`, without paying for
    # torchvision.models at import time
    probe = "import sys, tiers.vision.all as v; assert callable(v.resnet34); print('torchvision.models' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
    assert resolve_arch(resnet34) is torchvision.models.resnet34
    assert resolve_arch(partial(resnet18, num_classes=3)).func is torchvision.models.resnet18
    assert pickle.loads(pickle.dumps(resnet18)).resolve() is torchvision.models.resnet18
    learn = vision_learner(mnist_dls, resnet18, pretrained=False, n_out=5)
    assert learn.model(torch.randn(2, 1, 32, 32)).shape == (2, 5)
    assert model_meta.get(resolve_arch(resnet18)) is not None  # split and cut come from torchvision's entry
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # the handle finds the same cache file as the real function
    assert pretrained_weights_path(resnet18) == pretrained_weights_path(torchvision.models.resnet18)
