"""Audit: the models the application learners build have fastai 2.8.12's architecture (every parameter's name and
shape, recorded from fastai): vision_learner's head on resnet18, tabular_learner (default and layers=[50, 20],
embedding sizes by fastai's rule) and collab_learner's EmbeddingDotBias. A ported checkpoint's state_dict loads
only if these match."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tiers.collab.all import CollabDataLoaders, collab_learner
from tiers.tabular.all import Categorify, FillMissing, Normalize, TabularDataLoaders, tabular_learner
from tiers.vision.all import ImageDataLoaders, Path, Resize, resnet18, vision_learner

FASTAI = {'collab': [('u_weight.weight', (11, 5)), ('i_weight.weight', (9, 5)), ('u_bias.weight', (11, 1)),
            ('i_bias.weight', (9, 1))],
 'tab': [('embeds.0.weight', (11, 6)), ('embeds.1.weight', (3, 3)), ('bn_cont.weight', (1,)),
         ('bn_cont.bias', (1,)), ('layers.0.0.weight', (200, 10)), ('layers.0.2.weight', (200,)),
         ('layers.0.2.bias', (200,)), ('layers.1.0.weight', (100, 200)), ('layers.1.2.weight', (100,)),
         ('layers.1.2.bias', (100,)), ('layers.2.0.weight', (2, 100)), ('layers.2.0.bias', (2,))],
 'tab_layers': [('embeds.0.weight', (11, 6)), ('embeds.1.weight', (3, 3)), ('bn_cont.weight', (1,)),
                ('bn_cont.bias', (1,)), ('layers.0.0.weight', (50, 10)), ('layers.0.2.weight', (50,)),
                ('layers.0.2.bias', (50,)), ('layers.1.0.weight', (20, 50)), ('layers.1.2.weight', (20,)),
                ('layers.1.2.bias', (20,)), ('layers.2.0.weight', (2, 20)), ('layers.2.0.bias', (2,))],
 'vision_head': [('2.weight', (1024,)), ('2.bias', (1024,)), ('4.weight', (512, 1024)), ('6.weight', (512,)),
                 ('6.bias', (512,)), ('8.weight', (2, 512))],
 'vision_head_str': ['Sequential', 'AdaptiveConcatPool2d', 'AdaptiveAvgPool2d', 'AdaptiveMaxPool2d',
                     'Flatten', 'BatchNorm1d', 'Dropout', 'Linear', 'ReLU', 'BatchNorm1d', 'Dropout',
                     'Linear']}


def _shapes(model):
    return [(n, tuple(p.shape)) for n, p in model.named_parameters()]


def test_vision_head(tmp_path):
    for sub in ("train", "valid"):
        for c in ("cat", "dog"):
            (tmp_path / sub / c).mkdir(parents=True)
            for i in range(2):
                Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / sub / c / f"{i}.png")
    dls = ImageDataLoaders.from_folder(Path(tmp_path), item_tfms=Resize(32), bs=2)
    head = vision_learner(dls, resnet18, pretrained=False).model[1]
    assert _shapes(head) == FASTAI["vision_head"]
    assert [type(m).__name__ for m in head.modules()] == FASTAI["vision_head_str"]


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_tabular_model(rng, tmp_path):
    n = 100
    df = pd.DataFrame({"a": rng.normal(size=n), "c": rng.choice(list("abcdefghij"), n), "e": rng.choice(["x", "y"], n),
                       "y": rng.choice(["p", "q"], n)})
    dls = TabularDataLoaders.from_df(df, tmp_path, procs=[Categorify, FillMissing, Normalize], cat_names=["c", "e"],
                                     cont_names=["a"], y_names="y", bs=16)
    assert _shapes(tabular_learner(dls, n_out=2).model) == FASTAI["tab"]
    assert _shapes(tabular_learner(dls, layers=[50, 20], n_out=2).model) == FASTAI["tab_layers"]


def test_collab_model(rng):
    rat = pd.DataFrame({"u": rng.integers(0, 10, 200), "i": rng.integers(0, 8, 200), "r": rng.random(200) * 5})
    dls = CollabDataLoaders.from_df(rat, bs=32)
    assert _shapes(collab_learner(dls, n_factors=5, y_range=(0, 5.5)).model) == FASTAI["collab"]
