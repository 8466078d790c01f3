"""`learn.export_onnx` (extra tiers-train[onnx]): the graph takes the raw uint8 images and applies the batch
transforms (IntToFloatTensor, Normalize) and the loss's activation; onnxruntime matches `get_preds` on any batch
size; unexportable batch transforms are refused with nothing written; a missing extra is named."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

from tiers.data import (
    Categorize,
    DataLoaders,
    Datasets,
    IndexSplitter,
    IntToFloatTensor,
    ItemGetter,
    Normalize,
)
from tiers.pipeline import Transform
from tiers.tensors import TensorImage
from tiers.train import Learner, accuracy

needs_onnx = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxruntime", "onnxscript")),
    reason="ONNX export is the optional extra tiers-train[onnx]")

_MEAN, _STD = (0.2, 0.5, 0.7), (0.3, 0.2, 0.25)


def _items(n=96):
    # uint8 3x8x8 "images": the class is whether the red channel is brighter than the blue one
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        img = torch.randint(0, 256, (3, 8, 8), generator=g, dtype=torch.uint8)
        out.append((TensorImage(img), "red" if img[0].float().mean() > img[2].float().mean() else "blue"))
    return out


def _net():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 2))


def _learner(tmp_path, extra_tfms=()):
    items = _items()
    dsets = Datasets(items, [[ItemGetter(0)], [ItemGetter(1), Categorize()]],
                     splits=IndexSplitter(range(72, 96))(items))
    dls = dsets.dataloaders(bs=16, device="cpu",
                            after_batch=[IntToFloatTensor(), Normalize.from_stats(_MEAN, _STD, cuda=False),
                                         *extra_tfms])
    learn = Learner(dls, _net(), metrics=accuracy, path=tmp_path)
    learn.fit(1, 1e-2)
    return learn, items


@needs_onnx
def test_onnx_graph_takes_raw_uint8_images_and_matches_get_preds(tmp_path):
    import onnxruntime as ort

    learn, items = _learner(tmp_path)
    path = learn.export_onnx("classifier.onnx")
    assert path == tmp_path / "models" / "classifier.onnx" and path.exists(), "the learner's path rule, as export"
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    assert inp.name == "x" and inp.type == "tensor(uint8)" and inp.shape[1:] == [3, 8, 8]
    assert isinstance(inp.shape[0], str), "the batch axis is dynamic"
    meta = sess.get_modelmeta().custom_metadata_map
    assert json.loads(meta["tiers.vocab"]) == ["blue", "red"]
    assert json.loads(meta["tiers.inputs"])["x"]["dtype"] == "uint8"
    # the user's raw input: the validation images as they are, uint8 NCHW, no tiers code involved
    raw = np.stack([np.asarray(x) for x, _ in items[72:96]])
    preds, _ = learn.get_preds(dl=learn.dls.valid)
    got = sess.run(None, {"x": raw})[0]
    assert got.shape == (24, 2)
    np.testing.assert_allclose(got, preds.numpy(), atol=1e-4)
    np.testing.assert_allclose(got.sum(1), 1, atol=1e-5)  # probabilities: the loss's softmax is in the graph
    for n in (1, 5, 17):  # other batch sizes than the one exported with
        np.testing.assert_allclose(sess.run(None, {"x": raw[:n]})[0], preds[:n].numpy(), atol=1e-4)


@needs_onnx
def test_onnx_without_activation_gives_the_models_outputs_and_restores_the_model(tmp_path):
    import onnxruntime as ort

    learn, items = _learner(tmp_path)
    learn.model.train()
    path = learn.export_onnx(tmp_path / "sub" / "logits.onnx", activation=False, verify=True)
    assert learn.model.training, "the model's training flag is restored after export"
    raw = np.stack([np.asarray(x) for x, _ in items[72:80]])
    x = (torch.from_numpy(raw).float() / 255 - torch.tensor(_MEAN).view(1, 3, 1, 1)) / torch.tensor(_STD).view(1, 3, 1, 1)
    learn.model.eval()
    with torch.no_grad():
        want = learn.model(x).numpy()
    got = ort.InferenceSession(str(path)).run(None, {"x": raw})[0]
    np.testing.assert_allclose(got, want, atol=1e-4)


class _Jitter(Transform):
    "A batch transform that changes validation images too: it cannot be folded into the graph."

    def encodes(self, x: TensorImage):
        return x + 0.5


@needs_onnx
def test_onnx_refuses_a_batch_transform_it_cannot_export_and_writes_nothing(tmp_path):
    learn, _ = _learner(tmp_path, extra_tfms=[_Jitter()])
    with pytest.raises(ValueError, match=r"batch transform _Jitter changes validation inputs.*item_tfms"):
        learn.export_onnx("bad.onnx")
    assert list(tmp_path.rglob("*.onnx")) == [] and not list(tmp_path.rglob("tmp*"))


@pytest.mark.slow
def test_onnx_missing_extra_is_named(tmp_path):
    # onnxruntime blocked, as if not installed: the error says which extra to install, and nothing is written.
    code = f"""
        import sys
        sys.modules["onnxruntime"] = None
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from pathlib import Path
        from test_onnx import _learner
        learn, _ = _learner(Path({str(tmp_path)!r}))
        try:
            learn.export_onnx("m.onnx")
        except ModuleNotFoundError as e:
            print("ERROR:", type(e).__name__, e, getattr(e, "__notes__", []))
        print("FILES:", sorted(p.name for p in Path({str(tmp_path)!r}).rglob("*.onnx")))
    """
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=240,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    assert 'pip install "tiers-train[onnx]"' in r.stdout and "MissingExtraError" in r.stdout and "FILES: []" in r.stdout, r.stdout


@needs_onnx
def test_onnx_from_plain_torch_loaders(tmp_path):
    # a plain PyTorch project: torch DataLoaders, no batch transforms; the graph takes the tensors the loader yields
    import onnxruntime as ort
    from torch.utils.data import DataLoader, TensorDataset

    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    ds = TensorDataset(x, (x[:, 0] > 0).long())
    learn = Learner(DataLoaders(DataLoader(ds, 16, shuffle=True), DataLoader(ds, 16)), nn.Linear(4, 2),
                    loss_func=nn.CrossEntropyLoss(), path=tmp_path)
    learn.fit(1, 1e-2)
    sess = ort.InferenceSession(str(learn.export_onnx("plain.onnx")))
    assert sess.get_inputs()[0].type == "tensor(float)"
    with torch.no_grad():
        want = learn.model(x).numpy()
    np.testing.assert_allclose(sess.run(None, {"x": x.numpy()})[0], want, atol=1e-5)
