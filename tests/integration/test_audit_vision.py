"""Audit: the vision workflow of fastai's tutorials, ported by changing the import line, on 32-pixel images made
here (two classes of different brightness): every ImageDataLoaders constructor, fine_tune's freezing, discriminative
learning rates, reproducibility under set_seed, interpretation, predict and export/load_learner."""

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from tiers.vision.all import (
    ClassificationInterpretation,
    ImageDataLoaders,
    PILImage,
    Resize,
    accuracy,
    get_image_files,
    load_learner,
    resnet18,
    set_seed,
    vision_learner,
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for sub in ("train", "valid"):
        for ci, c in enumerate(("cat", "dog")):
            (root / sub / c).mkdir(parents=True)
            for i in range(4):
                a = np.full((32, 32, 3), 60 + 120 * ci, np.uint8) + rng.integers(0, 40, (32, 32, 3)).astype(np.uint8)
                Image.fromarray(a).save(root / sub / c / f"{c}_{sub}_{i}.png")
    return root


def _sizes(dls):
    return list(dls.vocab), len(dls.train_ds), len(dls.valid_ds)


def test_from_folder_uses_train_and_valid_folders(folder):
    dls = ImageDataLoaders.from_folder(folder, item_tfms=Resize(24), bs=4)
    assert _sizes(dls) == (["cat", "dog"], 8, 8)
    x, y = dls.one_batch()
    assert x.shape == (4, 3, 24, 24) and x.dtype == torch.float32 and y.shape == (4,)


def test_from_folder_with_valid_pct_on_a_flat_class_folder(folder):
    dls = ImageDataLoaders.from_folder(folder / "train", valid_pct=0.25, seed=42, item_tfms=Resize(24), bs=4)
    assert _sizes(dls) == (["cat", "dog"], 6, 2)


def test_from_name_func_gets_the_file_name_as_fastai(folder):
    files = get_image_files(folder)
    seen = []

    def label_func(name):
        seen.append(name)
        return name.split("_")[0]

    dls = ImageDataLoaders.from_name_func(folder, files, label_func, valid_pct=0.25, seed=1, item_tfms=Resize(24),
                                          bs=4)
    assert list(dls.vocab) == ["cat", "dog"]
    assert all(isinstance(s, str) and "/" not in s for s in seen)


def test_from_name_re_from_path_func_from_lists(folder):
    files = get_image_files(folder)
    kw = dict(valid_pct=0.25, seed=0, item_tfms=Resize(24), bs=4)
    assert list(ImageDataLoaders.from_name_re(folder, files, r"^([a-z]+)_\w+\.png$", **kw).vocab) == ["cat", "dog"]
    assert list(ImageDataLoaders.from_path_func(folder, files, lambda f: f.parent.name, **kw).vocab) == ["cat", "dog"]
    labels = [f.parent.name for f in files]
    assert list(ImageDataLoaders.from_lists(folder, files, labels, **kw).vocab) == ["cat", "dog"]
    with pytest.raises(ValueError, match="16 file names but 13 labels"):
        ImageDataLoaders.from_lists(folder, files, labels[:-3], **kw)


def test_from_df_and_from_csv_with_valid_col_and_label_delim(folder):
    files = get_image_files(folder)
    df = pd.DataFrame({"fname": [str(f.relative_to(folder)) for f in files],
                       "label": [f.parent.name for f in files],
                       "is_valid": ["valid" in str(f.relative_to(folder)) for f in files]})
    dls = ImageDataLoaders.from_df(df, folder, valid_col="is_valid", item_tfms=Resize(24), bs=4)
    assert _sizes(dls) == (["cat", "dog"], 8, 8)
    df.to_csv(folder / "labels.csv", index=False)
    dls = ImageDataLoaders.from_csv(folder, "labels.csv", valid_col="is_valid", item_tfms=Resize(24), bs=4)
    assert _sizes(dls) == (["cat", "dog"], 8, 8)
    df["label"] = [lbl + (" furry" if i % 2 else "") for i, lbl in enumerate(df.label)]
    dls = ImageDataLoaders.from_df(df, folder, label_delim=" ", valid_col="is_valid", item_tfms=Resize(24), bs=4)
    assert list(dls.vocab) == ["cat", "dog", "furry"]
    assert dls.one_batch()[1].shape == (4, 3)


def test_fine_tune_path_freezes_the_body_but_trains_batchnorm_and_head(folder):
    dls = ImageDataLoaders.from_folder(folder, item_tfms=Resize(24), bs=4)
    learn = vision_learner(dls, resnet18, pretrained=False, metrics=accuracy)
    conv = learn.model[0][0].weight.detach().clone()
    bn = learn.model[0][1].weight.detach().clone()
    head = [p.detach().clone() for p in learn.model[1].parameters()]
    learn.freeze()
    learn.fit(1, 1e-2)
    assert torch.equal(conv, learn.model[0][0].weight)
    assert not torch.equal(bn, learn.model[0][1].weight)  # fastai's train_bn
    assert any(not torch.equal(a, b) for a, b in zip(head, learn.model[1].parameters()))
    learn.unfreeze()
    learn.fit(1, slice(1e-5, 1e-3))
    lrs = [h["lr"] for h in learn.opt.hypers]
    assert len(lrs) == 3 and lrs == pytest.approx([1e-5, 1e-4, 1e-3])


def test_set_seed_makes_two_runs_identical(folder):
    def run():
        set_seed(42, reproducible=True)
        dls = ImageDataLoaders.from_folder(folder, item_tfms=Resize(24), bs=4)
        learn = vision_learner(dls, resnet18, pretrained=False)
        learn.fit(1, 1e-3)
        return learn.recorder.values[-1]

    assert run() == run()


def test_predict_interpretation_and_export_round_trip(folder):
    files = get_image_files(folder)
    dls = ImageDataLoaders.from_folder(folder, item_tfms=Resize(24), bs=4)
    learn = vision_learner(dls, resnet18, pretrained=False, metrics=accuracy)
    learn.fit(1, 1e-3)
    label, idx, probs = learn.predict(files[0])
    assert label == dls.vocab[int(idx)] and probs.shape == (2,)
    assert learn.predict(PILImage.create(files[0]))[0] == label
    probs_all, targs, dec = learn.get_preds(with_decoded=True)
    assert probs_all.shape == (8, 2) and torch.equal(dec, probs_all.argmax(1))
    interp = ClassificationInterpretation.from_learner(learn)
    cm = interp.confusion_matrix()
    assert cm.sum() == 8 and np.trace(np.asarray(cm)) == int((dec == targs).sum())
    losses, idxs = interp.top_losses(3)
    assert losses.shape == (3,) and bool((losses[:-1] >= losses[1:]).all())
    restored = load_learner(learn.export())
    assert list(restored.dls.vocab) == ["cat", "dog"]
    r_label, _, r_probs = restored.predict(files[0])
    assert r_label == label and torch.allclose(r_probs, probs, atol=1e-5)


def test_get_image_files_skips_hidden_folders_and_files_as_fastai(tmp_path):
    # a notebook's .ipynb_checkpoints copy must not become an extra image (or a class); macOS' ._ files neither
    img = Image.fromarray(np.zeros((8, 8, 3), np.uint8))
    for rel in ("cat/a.png", "cat/.ipynb_checkpoints/a-checkpoint.png", ".hidden/b.png", "cat/._a.png",
                "cat/UPPER.PNG", "dog/c.jpeg", "dog/d.webp", "dog/e.tif", "dog/f.bmp"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        img.save(tmp_path / rel, format="PNG" if rel.lower().endswith(".png") else None)
    (tmp_path / "dog" / "notes.txt").write_text("x")
    (tmp_path / "dog" / ".DS_Store").write_bytes(b"\0\0")
    found = sorted(str(f.relative_to(tmp_path)) for f in get_image_files(tmp_path))
    assert found == ["cat/UPPER.PNG", "cat/a.png", "dog/c.jpeg", "dog/d.webp", "dog/e.tif", "dog/f.bmp"]


def test_validation_batches_are_deterministic_under_random_augmentation(folder):
    from tiers.vision.all import Normalize, RandomResizedCrop, aug_transforms, imagenet_stats

    dls = ImageDataLoaders.from_folder(folder, item_tfms=RandomResizedCrop(24, min_scale=0.3), bs=8,
                                       batch_tfms=[*aug_transforms(size=24, max_warp=0.3, max_rotate=30),
                                                   Normalize.from_stats(*imagenet_stats)])
    assert torch.equal(dls.valid.one_batch()[0], dls.valid.one_batch()[0])
    assert not torch.equal(dls.train.one_batch()[0], dls.train.one_batch()[0])
    test = dls.test_dl(get_image_files(folder / "valid"))
    assert torch.allclose(test.one_batch()[0].sort(0)[0], dls.valid.one_batch()[0].sort(0)[0])


def test_export_with_aug_transforms_loads_safely(folder):
    """AUDIT A1: the tutorial path (batch_tfms=aug_transforms()) exported and loaded without trusted=True."""
    from tiers.vision.all import aug_transforms

    dls = ImageDataLoaders.from_folder(folder, item_tfms=Resize(28), batch_tfms=aug_transforms(size=24), bs=4)
    learn = vision_learner(dls, resnet18, pretrained=False)
    restored = load_learner(learn.export())
    files = get_image_files(folder)
    assert restored.predict(files[0])[0] == learn.predict(files[0])[0]
    assert [type(t).__name__ for t in restored.dls.after_batch.fs] == [type(t).__name__ for t in dls.after_batch.fs]
