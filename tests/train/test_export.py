"""Tests of `Learner.export` / `load_learner`: round trip, safe loading, corrupted files."""

import io
import os
import pickle
import zipfile

import pytest
import torch
from torch import nn

from tiers.data import Categorize, Datasets, IndexSplitter, ItemGetter
from tiers.train import Learner, UnsafeExportError, accuracy, load_learner
from tiers.train.io.export import _TensorPickler

torch.set_num_threads(1)


def _items(n=120):
    g = torch.Generator().manual_seed(0)
    xs = torch.randn(n, 3, generator=g)
    return [(x, "pos" if x[0] > 0 else "neg") for x in xs]


class TinyNet(nn.Module):
    "A model defined outside tiers and torch: safe loading needs it listed in `allowed`."

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.register_buffer("scale", torch.tensor(2.0))

    def forward(self, x):
        return self.lin(x * self.scale)


def _learner(tmp_path, model=None):
    items = _items()
    dsets = Datasets(items, [[ItemGetter(0)], [ItemGetter(1), Categorize()]], splits=IndexSplitter(range(100, 120))(items))
    dls = dsets.dataloaders(bs=16)
    model = model if model is not None else nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
    learn = Learner(dls, model, metrics=accuracy, path=tmp_path)
    learn.fit(1, 1e-2)
    return learn, items


def test_round_trip_predict_matches(tmp_path):
    learn, items = _learner(tmp_path)
    path = learn.export("export.pkl")
    assert path == tmp_path / "models" / "export.pkl" and zipfile.is_zipfile(path)  # the one path rule
    new = load_learner(path)
    assert len(new.dls.train_ds) == 0 and new.opt is None  # no training data kept
    for it in items[100:105]:
        a, b = learn.predict(it), new.predict(it)
        assert a[0] == b[0] and a[0] in ("pos", "neg")
        assert torch.equal(a[2], b[2])
    assert list(new.dls.vocab) == ["neg", "pos"]


def test_fastai_style_load_from_path_finds_the_export_with_a_warning(tmp_path):
    # fastai code: learn.export(); load_learner(learn.path/'export.pkl')
    learn, items = _learner(tmp_path)
    learn.export()
    with pytest.warns(UserWarning, match=r"no file at .*export\.pkl; loading .*models/export\.pkl"):
        new = load_learner(learn.path / "export.pkl")
    assert new.predict(items[100])[0] == learn.predict(items[100])[0]
    with pytest.raises(FileNotFoundError, match="no file at"):
        load_learner(learn.path / "other.pkl")


def test_custom_model_needs_allowed(tmp_path):
    learn, items = _learner(tmp_path, TinyNet())
    path = learn.export(tmp_path / "e.pkl")
    with pytest.raises(UnsafeExportError, match=r"TinyNet.*allowed="):
        load_learner(path)
    new = load_learner(path, allowed=[TinyNet])
    assert isinstance(new.model, TinyNet) and float(new.model.scale) == 2.0
    assert torch.equal(new.predict(items[0])[2], learn.predict(items[0])[2])
    assert isinstance(load_learner(path, trusted=True).model, TinyNet)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _EvilTorch:
    # A disguise: torch.load is in an allowed library, but it runs code on load.
    def __reduce__(self):
        return (torch.load, (io.BytesIO(b""),))


def _swap_pickle(path, payload: bytes):
    # Rewrite the export with `payload` as its pickle and a matching checksum, as an attacker would.
    import hashlib
    import json

    with zipfile.ZipFile(path) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    man = json.loads(parts["manifest.json"])
    man["learner.pkl"] = hashlib.sha256(payload).hexdigest()
    parts["manifest.json"], parts["learner.pkl"] = json.dumps(man).encode(), payload
    with zipfile.ZipFile(path, "w") as z:
        for n, b in parts.items():
            z.writestr(n, b)


def test_malicious_file_does_not_run(tmp_path):
    learn, _ = _learner(tmp_path)
    path = learn.export("export.pkl")
    marker = tmp_path / "pwned"
    _swap_pickle(path, pickle.dumps({"learner": _Evil(marker)}))
    with pytest.raises(UnsafeExportError, match=r"(posix|os)\.system.*trusted=True"):
        load_learner(path)
    assert not marker.exists()
    _swap_pickle(path, pickle.dumps(_EvilTorch()))
    with pytest.raises(UnsafeExportError, match="torch"):
        load_learner(path)
    # a dotted name that walks out of an allowed module is caught too
    mod, name = b"tiers.train.io.export", b"os.system"
    payload = b"\x80\x04\x8c" + bytes([len(mod)]) + mod + b"\x8c" + bytes([len(name)]) + name + b"\x93."
    _swap_pickle(path, payload)
    with pytest.raises(UnsafeExportError):
        load_learner(path)


def test_corrupted_and_truncated(tmp_path):
    learn, _ = _learner(tmp_path)
    path = learn.export("export.pkl")
    data = path.read_bytes()
    (tmp_path / "trunc.pkl").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupted"):
        load_learner(tmp_path / "trunc.pkl")
    bad = bytearray(data)
    mid = data.index(b"learner.pkl") - 200  # inside the safetensors member, before the pickle's header
    bad[mid] ^= 0xFF
    (tmp_path / "flip.pkl").write_bytes(bytes(bad))
    with pytest.raises(ValueError, match="corrupted"):
        load_learner(tmp_path / "flip.pkl")
    (tmp_path / "other.pkl").write_bytes(pickle.dumps(learn.model))
    with pytest.raises(ValueError, match="not a tiers export"):
        load_learner(tmp_path / "other.pkl")
    with pytest.raises(FileNotFoundError):
        load_learner(tmp_path / "missing.pkl")
    with pytest.raises(IsADirectoryError, match=r"is a folder; pass the exported file in it, e\.g\. .*models/export\.pkl "
                       r"\(its \.pkl files: flip.pkl, models/export.pkl, other.pkl"):
        load_learner(tmp_path)


def test_tensors_leave_the_pickle():
    buf = io.BytesIO()
    p = nn.Linear(2, 2)
    pk = _TensorPickler(buf)
    pk.dump({"a": p.weight, "b": p.weight, "c": torch.arange(3)})
    assert len(pk.tensors) == 2  # the shared parameter is stored once
    assert b"_rebuild" not in buf.getvalue()
