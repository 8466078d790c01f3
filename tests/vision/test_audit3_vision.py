"""AUDIT3 E16 (images from channels-last tensors) and E17 (void pixels in segmentation masks)."""

from functools import partial

import numpy as np
import pytest
import torch
from PIL import Image

from tiers.data import get_image_files
from tiers.tensors import TensorImage, set_seed
from tiers.vision import ImageDataLoaders, PILImage, PILImageBW, image2tensor, vision_learner, xresnet18

# ---------------------------------------------------------------- E16: PILImage.create / predict on tensors


@pytest.fixture(scope="module")
def mnist_learner(mnist_path):
    set_seed(0)
    dls = ImageDataLoaders.from_folder(mnist_path, bs=32, device="cpu")
    learn = vision_learner(dls, partial(xresnet18, widen=0.25), pretrained=False, lin_ftrs=[16])
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, 3e-3)
    return learn


def _inputs(f):
    """Every kind of input `PILImage.create` / `learn.predict` takes for the image file `f`, by name."""
    im = PILImage.create(f)
    hwc = torch.tensor(np.array(im))  # fastbook ch. 4: tensor(Image.open(f)), (h, w, 3) uint8
    assert hwc.shape[-1] == 3 and hwc.dtype == torch.uint8
    return {
        "str path": str(f),
        "Path": f,
        "bytes": f.read_bytes(),
        "PILImage": im,
        "plain PIL image": Image.open(f),
        "HWC array": np.array(im),
        "HW array": np.array(Image.open(f).convert("L")),
        "CHW uint8 tensor": image2tensor(im),
        "CHW float tensor": image2tensor(im).float() / 255,
        "CHW TensorImage": TensorImage(image2tensor(im)),
        "HWC uint8 tensor": hwc,
        "HWC float tensor": hwc.float() / 255,
    }


def test_create_reads_a_plain_channels_last_tensor_as_fastai_does(mnist_path):
    f = get_image_files(mnist_path / "valid")[0]
    ref = np.asarray(PILImage.create(f))
    assert ref.shape == (28, 28, 3)
    for name, x in _inputs(f).items():
        im = PILImage.create(x)
        assert isinstance(im, PILImage) and im.mode == "RGB", name
        np.testing.assert_array_equal(np.asarray(im), ref, err_msg=name)
    # grey images: (h, w, 1) plain tensors are channels-last, (1, h, w) channels-first, both the same picture
    bw = np.asarray(PILImageBW.create(f))
    t = torch.from_numpy(bw.copy())
    for x in (t[..., None], t[None], TensorImage(t[None]), t[..., None].float() / 255):
        np.testing.assert_array_equal(np.asarray(PILImageBW.create(x)), bw)
    # RGBA channels-last (h, w, 4) and a tiny image whose sides are channel counts (image2tensor round trip)
    rgba = np.random.default_rng(0).integers(0, 256, (5, 7, 4), dtype=np.uint8)
    np.testing.assert_array_equal(np.asarray(PILImage.create(torch.from_numpy(rgba))),
                                  np.asarray(Image.fromarray(rgba).convert("RGB")))
    tiny = Image.fromarray(np.random.default_rng(1).integers(0, 256, (4, 3, 3), dtype=np.uint8))
    np.testing.assert_array_equal(np.asarray(PILImage.create(image2tensor(tiny))), np.asarray(tiny))


def test_predict_gives_the_same_answer_for_every_input_kind(mnist_learner, mnist_path):
    for f in get_image_files(mnist_path / "valid")[:2]:
        ref_lbl, ref_idx, ref_probs = mnist_learner.predict(f)
        for name, x in _inputs(f).items():
            lbl, idx, probs = mnist_learner.predict(x)
            assert (lbl, int(idx)) == (ref_lbl, int(ref_idx)), name
            torch.testing.assert_close(probs, ref_probs, msg=name)


@pytest.mark.parametrize(("x", "match"), [
    (torch.zeros(5, 6, 7, dtype=torch.uint8), r"shape \(5, 6, 7\).*\(c, h, w\).*\(h, w, c\)"),
    (TensorImage(torch.zeros(28, 28, 3, dtype=torch.uint8)), r"TensorImage is channels-first.*\(28, 28, 3\).*permute"),
    (np.zeros((3, 6, 7), np.uint8), r"channels-last.*\(3, 6, 7\).*transpose\(1, 2, 0\)"),
    (np.zeros((6, 7, 5), np.uint8), r"\(6, 7, 5\) has 5 channels"),
    (torch.zeros(1, 3, 6, 7), r"shape \(1, 3, 6, 7\).*batch of one, pass x\[0\]"),
    (torch.zeros(7), r"shape \(7,\)"),
])
def test_create_refuses_shapes_it_cannot_read_naming_them(x, match):
    with pytest.raises(ValueError, match=match):
        PILImage.create(x)


def test_predict_on_an_unreadable_tensor_names_its_shape(mnist_learner):
    with pytest.raises(ValueError, match=r"\(28, 28, 5\)"):
        mnist_learner.predict(torch.zeros(28, 28, 5, dtype=torch.uint8))


# ---------------------------------------------------------------- E17: 'void' pixels in segmentation masks


def _camvid_with_void(tmp_path):
    """A tiny camvid-like folder whose first mask has a block of 255 ('void') pixels; (path, fnames, label_func, codes)."""
    from tiers.vision import make_camvid_tiny

    path = make_camvid_tiny(tmp_path / "camvid", n_images=8, size=(32, 48))
    lbl = sorted((path / "labels").iterdir())[0]
    a = np.array(Image.open(lbl))
    a[:6, :8] = 255
    Image.fromarray(a).save(lbl)
    codes = np.loadtxt(path / "codes.txt", dtype=str)
    assert len(codes) == 4 and a.max() == 255
    return path, get_image_files(path / "images"), _mask_of, codes


def _mask_of(o):
    return o.parent.parent / "labels" / f"{o.stem}_P{o.suffix}"  # top level: an export refers to it by name


def _all_masks(dls):
    # every mask, once (the training loader shuffles and drops its last partial batch)
    dls = (dls.train.new(shuffle=False, drop_last=False), dls.valid)
    return torch.cat([y.as_subclass(torch.Tensor).reshape(-1) for dl in dls for _, y in dl])


def test_void_masks_are_refused_unless_declared_then_train_with_ignore_index(tmp_path):
    from tiers.train import Callback, CrossEntropyLossFlat, DiceMulti, foreground_acc, load_learner
    from tiers.vision import MaskCodes, SegmentationDataLoaders, acc_segment, unet_learner

    path, fnames, label_func, codes = _camvid_with_void(tmp_path)
    # without a void declaration the refusal stays, and now says how to declare one
    dls = SegmentationDataLoaders.from_label_func(path, fnames, label_func, codes=codes, bs=4, device="cpu", seed=0)
    with pytest.raises(ValueError, match=r"scene_000_P\.png holds class code\(s\) \[255\].*4 classes") as e:
        _all_masks(dls)
    assert "codes=MaskCodes(codes, void=255)" in str(e.value) and "ignore_index=255" in str(e.value)

    set_seed(0)
    dls = SegmentationDataLoaders.from_label_func(path, fnames, label_func, codes=MaskCodes(codes, void=255), bs=2,
                                                  device="cpu", seed=0)
    ys = _all_masks(dls)
    assert (ys == 255).sum() == 6 * 8 and set(ys.unique().tolist()) <= {0, 1, 2, 3, 255}, "void pixels kept as is"
    learn = unet_learner(dls, partial(xresnet18, widen=0.25), pretrained=False,
                         loss_func=CrossEntropyLossFlat(axis=1, ignore_index=255),
                         metrics=[partial(acc_segment, void_code=255), DiceMulti(void_code=255),
                                  partial(foreground_acc, void_code=255)])
    assert learn.model(dls.one_batch()[0]).shape[1] == 4, "void is not a class: n_out = len(codes)"
    void_batches = []

    class SeesVoid(Callback):
        def after_loss(self):
            void_batches.append(bool((self.learn.yb[0] == 255).any()))

    with learn.no_bar(), learn.no_logging():
        learn.fit(2, 3e-3, cbs=SeesVoid())
    assert any(void_batches), "the loss met void pixels (and skipped them: finite)"
    losses = [float(v) for v in learn.recorder.losses]
    assert len(losses) == 2 * len(dls.train) and all(np.isfinite(losses))
    assert all(torch.isfinite(p).all() for p in learn.model.parameters())
    _, acc, dice, fg = learn.validate()
    assert all(0.0 <= float(v) <= 1.0 for v in (acc, dice, fg))
    # DiceMulti(void_code=255) is the macro Dice of the non-void pixels
    preds, targs = learn.get_preds()
    p, t = preds.argmax(1).reshape(-1), targs.reshape(-1)
    keep = t != 255
    p, t = p[keep], t[keep]
    per_class = [2 * ((p == c) & (t == c)).sum().item() / u for c in range(4)
                 if (u := ((p == c).sum() + (t == c).sum()).item()) > 0]
    assert dice == pytest.approx(np.mean(per_class), rel=1e-5)
    # the declaration survives an export: the loaded learner predicts, and still refuses other stray values
    learn.export(tmp_path / "seg.pkl")
    loaded = load_learner(tmp_path / "seg.pkl")
    assert loaded.predict(fnames[0])[0].shape == (32, 48)
    mask_tfm = next(t for t in loaded.dls.train.after_item.fs if type(t).__name__ == "AddMaskCodes")
    assert mask_tfm.void == 255 and mask_tfm.codes == list(codes) and type(mask_tfm.codes) is list


def test_void_is_declared_once_and_only_outside_the_classes():
    from tiers.vision import AddMaskCodes, MaskCodes, PILMask

    codes = ["bg", "a", "b"]
    mc = MaskCodes(codes, void=255)
    assert mc == codes and mc.void == 255 and AddMaskCodes(mc).c == 3 and AddMaskCodes(mc).void == 255
    assert AddMaskCodes(codes, void=255).void == 255 and AddMaskCodes(codes).void is None
    assert repr(mc) == "MaskCodes(['bg', 'a', 'b'], void=255)"
    with pytest.raises(ValueError, match=r"void=2 is the code of class 'b'"):
        MaskCodes(np.array(codes), void=2)
    for bad in (256, -1, "255", True, 2.5):
        with pytest.raises(ValueError, match=r"not a mask pixel value"):
            AddMaskCodes(codes, void=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"void=254 but the codes say void=255"):
        AddMaskCodes(mc, void=254)
    m = np.zeros((4, 5), np.uint8)
    m[0, 0], m[1, 1] = 255, 2
    tfm = AddMaskCodes(mc)
    assert np.array_equal(np.asarray(tfm(PILMask.create(m))), m), "void pixels pass unchanged"
    m[2, 2] = 254  # a value that is neither a class nor the void one is still refused
    with pytest.raises(ValueError, match=r"\[254\].*void=255 is the one value allowed"):
        tfm(PILMask.create(m))
    # pickled before `void` existed (no instance attribute): loads with none, refusing 255 as it did
    old = AddMaskCodes(codes)
    del old.__dict__["void"]
    with pytest.raises(ValueError, match=r"\[254, 255\].*MaskCodes\(codes, void=255\)"):
        old(PILMask.create(m))


def test_segmentation_metrics_skip_void_pixels():
    from types import SimpleNamespace

    from tiers.train import Dice, DiceMulti, JaccardCoeffMulti, foreground_acc
    from tiers.vision import acc_segment

    g = torch.Generator().manual_seed(0)
    out = torch.randn(4, 3, 6, 6, generator=g)
    targ = torch.randint(0, 3, (4, 6, 6), generator=g)
    targ[:, :2, :3] = 255
    pred = out.argmax(1)
    keep = targ != 255
    p, t = pred[keep], targ[keep]

    def run(metric, o, y):
        metric.reset()
        for i in range(0, len(o), 3):  # uneven batches, as a loader feeds them
            metric.accumulate(SimpleNamespace(pred=o[i:i + 3], yb=(y[i:i + 3],)))
        return metric.value

    def dice(p, t, classes):
        return np.mean([2 * ((p == c) & (t == c)).sum().item() / ((p == c).sum() + (t == c).sum()).item()
                        for c in classes if ((p == c).sum() + (t == c).sum()) > 0])

    assert acc_segment(out, targ, void_code=255).item() == pytest.approx((p == t).float().mean().item())
    fg = keep & (targ != 0)
    assert foreground_acc(out, targ, void_code=255).item() == pytest.approx(
        (pred[fg] == targ[fg]).float().mean().item())
    assert run(DiceMulti(void_code=255), out, targ) == pytest.approx(dice(p, t, range(3)))
    assert run(DiceMulti(), out, targ) < run(DiceMulti(void_code=255), out, targ), "void pixels cost dice unskipped"
    iou = [((p == c) & (t == c)).sum().item() / ((p == c) | (t == c)).sum().item() for c in range(3)]
    assert run(JaccardCoeffMulti(void_code=255), out, targ) == pytest.approx(np.mean(iou))
    bin_out = torch.stack([-out[:, 0], out[:, 0]], dim=1)
    bin_targ = torch.where(keep, (targ > 1).long(), targ)
    bp = bin_out.argmax(1)[keep]
    bt = bin_targ[keep]
    assert run(Dice(void_code=255), bin_out, bin_targ) == pytest.approx(
        2 * (bp * bt).sum().item() / (bp.sum() + bt.sum()).item())
    # pickled before void_code existed (no instance attribute): loads and counts every pixel, as it did
    old = DiceMulti()
    del old.__dict__["void_code"]
    assert run(old, out, targ) == run(DiceMulti(), out, targ)
