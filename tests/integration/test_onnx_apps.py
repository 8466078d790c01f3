"""`learn.export_onnx` on the applications, run by onnxruntime on the user's raw inputs: a vision classifier
(uint8 images after the item transforms; IntToFloatTensor + Normalize in the graph) and a tabular model (category
codes and raw continuous values with NaNs; FillMissing + Normalize in the graph), both matching `get_preds`."""

import importlib.util
import json

import numpy as np
import pandas as pd
import pytest
import torch

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxruntime", "onnxscript")),
    reason="ONNX export is the optional extra tiers-train[onnx]")


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.slow
def test_vision_classifier_onnx_matches_get_preds(tmp_path):
    import onnxruntime as ort
    from PIL import Image

    from tiers.data import Normalize, get_image_files
    from tiers.train import accuracy
    from tiers.vision import ImageDataLoaders, Resize, imagenet_stats, vision_learner, xresnet18
    from tiers.vision.data_samples import make_pets_tiny

    path = make_pets_tiny(tmp_path / "pets", n_per_class=8)
    fnames = get_image_files(path / "images")
    dls = ImageDataLoaders.from_name_re(path, fnames, pat=r"^([^/]+)_\d+.jpg$", item_tfms=Resize(32, method="squish"),
                                        bs=8, device="cpu", seed=0,
                                        batch_tfms=[Normalize.from_stats(*imagenet_stats, cuda=False)])
    learn = vision_learner(dls, xresnet18, pretrained=False, metrics=accuracy, lin_ftrs=[32])
    learn.fit(1, 1e-3)
    onnx_path = learn.export_onnx(tmp_path / "pets.onnx")
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    vocab = json.loads(meta["tiers.vocab"])
    assert vocab == list(dls.vocab)
    # what a user has at inference: the image files, resized like the item transform (squish), as uint8 NCHW
    valid_files = [dls.valid_ds.items[i] for i in range(len(dls.valid_ds))]
    raw = np.stack([np.asarray(Image.open(f).convert("RGB").resize((32, 32), Image.Resampling.BILINEAR))
                    .transpose(2, 0, 1) for f in valid_files])
    got = sess.run(None, {"x": raw})[0]
    preds, _ = learn.get_preds(dl=dls.valid)
    assert got.shape == tuple(preds.shape)
    np.testing.assert_allclose(got, preds.numpy(), atol=1e-4)
    assert [vocab[i] for i in got.argmax(1)] == [learn.predict(f)[0] for f in valid_files[:len(got)]]


@pytest.mark.slow
def test_tabular_onnx_takes_codes_and_raw_values_and_matches_get_preds(tmp_path):
    import onnxruntime as ort

    from tiers.tabular import Categorify, FillMissing, Normalize, TabularDataLoaders, tabular_learner
    from tiers.tabular.samples import make_adult_sample
    from tiers.train import accuracy

    df = pd.read_csv(make_adult_sample(tmp_path, n=600, nan_frac=0.05))
    cats = ["workclass", "education", "marital-status", "occupation", "sex"]
    conts = ["age", "fnlwgt", "education-num", "hours-per-week"]
    valid_idx = list(range(500, 600))
    dls = TabularDataLoaders.from_df(df, path=tmp_path, procs=[Categorify, FillMissing, Normalize], cat_names=cats,
                                     cont_names=conts, y_names="salary", valid_idx=valid_idx, bs=64)
    assert "education-num_na" in dls.train_ds.cat_names, "the sample has missing education-num values"
    learn = tabular_learner(dls, layers=[32, 16], metrics=accuracy)
    learn.fit(2, 1e-2)
    onnx_path = learn.export_onnx("adult.onnx")
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    inputs = json.loads(sess.get_modelmeta().custom_metadata_map["tiers.inputs"])
    assert inputs["x_cat"]["columns"] == cats and inputs["x_cont"]["columns"] == conts
    # the user's raw rows, straight from the DataFrame: category codes from the learner's vocabularies (0 for a
    # missing value), continuous values as they are, NaN included
    raw = df.iloc[valid_idx]
    classes = dls.classes
    x_cat = np.stack([raw[c].map(lambda v, c=c: 0 if pd.isna(v) else list(classes[c]).index(v)).to_numpy()
                      for c in cats], axis=1).astype(np.int64)
    x_cont = raw[conts].to_numpy(np.float32)
    assert np.isnan(x_cont).any(), "missing values reach the graph as NaN"
    got = sess.run(None, {"x_cat": x_cat, "x_cont": x_cont})[0]
    preds, _ = learn.get_preds(dl=dls.valid)
    assert got.shape == (100, 2)
    np.testing.assert_allclose(got, preds.numpy(), atol=1e-4)
    one = sess.run(None, {"x_cat": x_cat[:1], "x_cont": x_cont[:1]})[0]  # a batch of one row
    np.testing.assert_allclose(one, preds[:1].numpy(), atol=1e-4)
