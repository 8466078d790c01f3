"""Every application's own learner: `export`, then `load_learner` with the DEFAULT (safe) settings in a FRESH
process (which imports nothing but `tiers.train`), then `predict` gives what the exporting process predicted."""

import json
import subprocess
import sys
import textwrap
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

pytestmark = pytest.mark.slow

# The fresh process: only tiers.train is imported; the unpickler must find everything else by itself.
_CHILD = textwrap.dedent("""
    import json, sys
    import torch
    from tiers.train import load_learner
    torch.set_num_threads(1)
    fname, kind, arg = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    if len(sys.argv) > 4:  # the user's own module: the deployment script imports it, as it would its own code
        __import__(sys.argv[4])
    assert not any(m.startswith(("tiers.vision", "tiers.text", "tiers.tabular", "tiers.collab")) for m in sys.modules)
    learn = load_learner(fname)
    if kind == "path":
        from pathlib import Path
        item = Path(arg)
    elif kind == "row":
        import pandas as pd
        item = pd.read_csv(arg["csv"]).iloc[arg["i"]]
    else:
        item = arg
    if kind == "lm":
        torch.manual_seed(0)  # the words are sampled: same draws as the exporting process
        out = learn.predict(item, n_words=4, temperature=0.01)
        print(json.dumps({"text": out}))
    else:
        dec, _, probs = learn.predict(item)
        print(json.dumps({"probs": probs.flatten().tolist(), "shape": list(probs.shape), "dec": str(dec)[:200]}))
""")


def _fresh_predict(fname: Path, kind: str, arg, extra_path: Path | None = None) -> dict:
    env = None
    if extra_path is not None:
        import os

        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(extra_path), os.environ.get("PYTHONPATH", "")]))
    extra = ["my_labels_mod"] if extra_path is not None else []
    r = subprocess.run([sys.executable, "-c", _CHILD, str(fname), kind, json.dumps(arg), *extra], capture_output=True,
                       text=True, timeout=240, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def _check(learn, item, fname: Path, kind: str, arg, extra_path: Path | None = None) -> None:
    dec, _, probs = learn.predict(item)
    got = _fresh_predict(fname, kind, arg, extra_path)
    assert got["shape"] == list(probs.shape)
    assert np.allclose(got["probs"], probs.flatten().tolist(), atol=1e-5)
    assert got["dec"] == str(dec)[:200]


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    from tiers.vision.data_samples import make_mnist_tiny

    return make_mnist_tiny(tmp_path_factory.mktemp("mnist") / "mnist_tiny")


def _mnist_dls(path):
    from tiers.vision import ImageDataLoaders, PILImageBW, Resize

    return ImageDataLoaders.from_folder(path, bs=8, device="cpu", img_cls=PILImageBW, item_tfms=Resize(28))


@pytest.mark.parametrize("arch", ["xresnet", "torchvision_resnet"])
def test_image_classifier(mnist, tmp_path, arch):
    import torchvision

    from tiers.data import get_image_files
    from tiers.vision import vision_learner, xresnet18

    torch.manual_seed(0)
    model = partial(xresnet18, widen=0.25) if arch == "xresnet" else torchvision.models.resnet18
    learn = vision_learner(_mnist_dls(mnist), model, pretrained=False, path=tmp_path)
    fname = learn.export()
    assert fname == tmp_path / "models" / "export.pkl"  # the one path rule: path / model_dir
    img = get_image_files(mnist / "valid")[0]
    _check(learn, img, fname, "path", str(img))


_USER_MODULE = '''
"""The user's own module: its functions are referenced by name in the export."""


def parent_label(path):
    return path.parent.name


def camvid_label(o):
    return o.parent.parent / "labels" / f"{o.stem}_P{o.suffix}"
'''


@pytest.fixture(scope="module")
def user_mod(tmp_path_factory):
    """`my_labels_mod`, a module of the user's project (importable in the child through PYTHONPATH)."""
    import importlib

    proj = tmp_path_factory.mktemp("proj")
    (proj / "my_labels_mod.py").write_text(_USER_MODULE)
    sys.path.insert(0, str(proj))
    try:
        yield importlib.import_module("my_labels_mod"), proj
    finally:
        sys.path.remove(str(proj))
        sys.modules.pop("my_labels_mod", None)


def test_segmentation_unet(tmp_path, user_mod):
    from tiers.data import get_image_files
    from tiers.vision import SegmentationDataLoaders, unet_learner, xresnet18
    from tiers.vision.data_samples import make_camvid_tiny

    cam = make_camvid_tiny(tmp_path / "camvid", n_images=6)
    codes = np.loadtxt(cam / "codes.txt", dtype=str)
    fnames = get_image_files(cam / "images")
    dls = SegmentationDataLoaders.from_label_func(cam, fnames, user_mod[0].camvid_label, codes=codes, bs=2,
                                                  device="cpu", seed=0)
    torch.manual_seed(0)
    learn = unet_learner(dls, partial(xresnet18, widen=0.25), pretrained=False, path=tmp_path)
    fname = learn.export(tmp_path / "unet.pkl")
    _check(learn, fnames[0], fname, "path", str(fnames[0]), extra_path=user_mod[1])


@pytest.fixture(scope="module")
def text_data(tmp_path_factory):
    from tiers.text.block import TextDataLoaders
    from tiers.text.samples import make_imdb_df

    path = tmp_path_factory.mktemp("text")
    df = make_imdb_df(60, seed=3)
    lm = TextDataLoaders.from_df(df, path=path, text_col="text", is_lm=True, valid_col="is_valid", bs=8, seq_len=16,
                                 n_workers=1)
    clas = TextDataLoaders.from_df(df, path=path, text_col="text", label_col="label", valid_col="is_valid",
                                   text_vocab=lm.vocab, bs=8, n_workers=1)
    return lm, clas, path


_SMALL = dict(emb_sz=16, n_hid=24, n_layers=2)


def test_text_classifier(text_data):
    from tiers.text.awdlstm import AWD_LSTM, awd_lstm_clas_config
    from tiers.text.learner import text_classifier_learner

    torch.manual_seed(0)
    learn = text_classifier_learner(text_data[1], AWD_LSTM, config=dict(awd_lstm_clas_config, **_SMALL),
                                    pretrained=False)
    fname = learn.export("clas.pkl")
    assert fname == text_data[2] / "models" / "clas.pkl"
    _check(learn, "What a wonderful film", fname, "text", "What a wonderful film")


def test_language_model(text_data):
    from tiers.text.awdlstm import AWD_LSTM, awd_lstm_lm_config
    from tiers.text.learner import language_model_learner

    torch.manual_seed(0)
    learn = language_model_learner(text_data[0], AWD_LSTM, config=dict(awd_lstm_lm_config, **_SMALL),
                                   pretrained=False)
    fname = learn.export("lm.pkl")
    torch.manual_seed(0)
    want = learn.predict("The film", n_words=4, temperature=0.01)
    got = _fresh_predict(fname, "lm", "The film")
    assert got["text"] == want and want.startswith("The film")


def test_tabular(tmp_path):
    from tiers.tabular import Categorify, FillMissing, Normalize, TabularDataLoaders, tabular_learner

    rng = np.random.default_rng(0)
    n = 200
    df = pd.DataFrame({"c1": rng.choice(list("abc"), n), "x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    df["y"] = np.where(df.x1 + (df.c1 == "a") > 0.3, "hi", "lo")
    df.loc[rng.random(n) < 0.1, "x1"] = np.nan
    csv = tmp_path / "t.csv"
    df.to_csv(csv, index=False)
    dls = TabularDataLoaders.from_df(df, procs=[Categorify, FillMissing, Normalize], cat_names=["c1"],
                                     cont_names=["x1", "x2"], y_names="y", valid_idx=list(range(150, 200)), bs=32)
    torch.manual_seed(0)
    learn = tabular_learner(dls, layers=[8], path=tmp_path)
    learn.fit(1, 1e-2)
    fname = learn.export()
    row = pd.read_csv(csv).iloc[3]
    _check(learn, row, fname, "row", {"csv": str(csv), "i": 3})


def test_collab(tmp_path):
    from tiers.collab import CollabDataLoaders, collab_learner, make_ratings_sample

    make_ratings_sample(tmp_path, n_users=20, n_items=30, n_ratings=400, noise=0.3, seed=1)
    csv = tmp_path / "ratings.csv"
    dls = CollabDataLoaders.from_csv(csv, bs=64, seed=0)
    torch.manual_seed(0)
    learn = collab_learner(dls, n_factors=4, y_range=(0, 5.5), path=tmp_path)
    learn.fit(1, 1e-2)
    fname = learn.export()
    row = pd.read_csv(csv).iloc[5]
    _check(learn, row, fname, "row", {"csv": str(csv), "i": 5})


def test_get_y_from_the_users_own_module(mnist, tmp_path, user_mod):
    from tiers.data import CategoryBlock, DataBlock, get_image_files
    from tiers.vision import ImageBlock, PILImageBW, vision_learner, xresnet18

    block = DataBlock(blocks=(ImageBlock(PILImageBW), CategoryBlock), get_items=get_image_files,
                      get_y=user_mod[0].parent_label)
    dls = block.dataloaders(mnist / "train", bs=8, device="cpu")
    torch.manual_seed(0)
    learn = vision_learner(dls, partial(xresnet18, widen=0.25), pretrained=False, path=tmp_path)
    fname = learn.export()
    img = get_image_files(mnist / "valid")[0]
    _check(learn, img, fname, "path", str(img), extra_path=user_mod[1])
