"""ONNX export of a trained model WITH its input preprocessing (`learn.export_onnx`), checked by onnxruntime.

The graph takes the raw input a user has at inference, not the normalised tensor the model sees, and returns what
`learn.get_preds` returns (the model's output after the loss's activation, e.g. softmax probabilities):

* image (and any tensor) inputs, named `x` (`x0, x1...` for several): the batch the validation DataLoader builds
  BEFORE its batch transforms -- for images `uint8` NCHW, RGB (or L) in 0..255, at the size the item transforms
  give (e.g. after `Resize(224)`: `np.asarray(img.resize((224, 224)))` transposed to CHW). The graph applies the
  validation batch transforms: `IntToFloatTensor` (/255) and `Normalize` (the learner's mean and std). A batch
  transform that changes validation batches in another way (a batch-level resize such as `aug_transforms(size=...)`)
  cannot go in the graph: the export refuses it, naming it.
* tabular inputs (a `TabularPandas` dataset): `x_cat`, int64 (N, len(cat_names)): each categorical column's code, its
  index in `learn.dls.classes[col]` (0 = missing or unseen), the `<col>_na` columns left out; and `x_cont`, float32
  (N, len(cont_names)): the raw continuous values, NaN where missing. The graph fills missing values and adds the
  `_na` codes (`FillMissing`) and normalises (`Normalize`) as the procs do.

The batch axis is dynamic. The model's description (inputs, column names, vocabularies) is stored in the ONNX
metadata (`tiers.inputs`, `tiers.classes`, `tiers.vocab`). Needs the optional extra `tiers-train[onnx]`
(onnx, onnxruntime, onnxscript).

>>> learn.export_onnx("model.onnx")                                          # doctest: +SKIP
>>> sess = onnxruntime.InferenceSession("models/model.onnx")                 # doctest: +SKIP
>>> probs = sess.run(None, onnx_inputs(learn, learn.dls.valid.one_batch()))[0]   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from torch import Tensor, nn

from tiers.data import IntToFloatTensor, Normalize
from tiers.dispatch.extras import require
from tiers.dispatch.files import atomic_path
from tiers.train.io.paths import learner_file, write_once

if TYPE_CHECKING:
    from tiers.data.load import DataLoader
    from tiers.train.learner import Learner

__all__ = ["export_onnx", "onnx_inputs", "OnnxModel", "import_onnx_extra"]

_EXTRA = 'pip install "tiers-train[onnx]"'


def import_onnx_extra() -> tuple[ModuleType, ModuleType]:
    """`(onnx, onnxruntime)`, after checking onnxscript (torch.onnx.export needs it); a missing one raises
    `MissingExtraError` (a `ModuleNotFoundError`) naming the extra tiers-train[onnx] and the command that installs it."""
    what = "ONNX export (learn.export_onnx)"
    onnx = require("onnx", dist="tiers-train", extra="onnx", what=what)
    onnxruntime = require("onnxruntime", dist="tiers-train", extra="onnx", what=what)
    # torch.onnx.export's exporter imports onnxscript: a missing one fails here, with the extra named
    require("onnxscript", dist="tiers-train", extra="onnx", what=what)
    return onnx, onnxruntime


# ---------------------------------------------------------------------------------------------- in-graph steps


class _Div(nn.Module):
    # IntToFloatTensor: integer pixels to floats.
    def __init__(self, div: float):
        super().__init__()
        self.div = float(div)

    def forward(self, x: Tensor) -> Tensor:
        return x.float() / self.div


class _Norm(nn.Module):
    # Normalize: (x - mean) / std with the learner's statistics.
    mean: Tensor  # buffers
    std: Tensor

    def __init__(self, mean: Tensor, std: Tensor):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean).detach().float().cpu().clone())
        self.register_buffer("std", torch.as_tensor(std).detach().float().cpu().clone())

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class _TabularPrep(nn.Module):
    # The procs that run before batching, folded into the graph: FillMissing (values and `_na` codes) and Normalize.
    fill: Tensor  # buffers
    has_fill: Tensor
    mean: Tensor
    std: Tensor
    na_src: Tensor
    na_true: Tensor
    na_false: Tensor
    order: Tensor

    def __init__(self, spec: dict):
        super().__init__()
        f32: dict[str, Any] = dict(dtype=torch.float32)
        self.register_buffer("fill", torch.tensor(spec["fill"], **f32))
        self.register_buffer("has_fill", torch.tensor(spec["has_fill"], dtype=torch.bool))
        self.register_buffer("mean", torch.tensor(spec["mean"], **f32))
        self.register_buffer("std", torch.tensor(spec["std"], **f32))
        self.register_buffer("na_src", torch.tensor(spec["na_src"], dtype=torch.long))
        self.register_buffer("na_true", torch.tensor(spec["na_true"], dtype=torch.long))
        self.register_buffer("na_false", torch.tensor(spec["na_false"], dtype=torch.long))
        self.register_buffer("order", torch.tensor(spec["order"], dtype=torch.long))
        self.with_cont = spec["with_cont"]

    def forward(self, cat: Tensor, cont: Tensor | None = None) -> tuple[Tensor, ...]:
        if not self.with_cont:
            return (cat,)
        if cont is None:
            raise ValueError("the model reads continuous columns too: pass x_cont with x_cat")
        missing = torch.isnan(cont)
        parts = [cat.long()]
        if self.na_src.numel():
            na = missing.index_select(1, self.na_src)
            parts.append(torch.where(na, self.na_true, self.na_false))
        full_cat = torch.cat(parts, dim=1).index_select(1, self.order)
        filled = torch.where(missing & self.has_fill, self.fill, cont)
        return full_cat, (filled - self.mean) / self.std


class OnnxModel(nn.Module):
    """`model` with its input preprocessing in front and the loss's activation behind: what `export_onnx` exports.

    `steps[i]` is the list of modules applied to input `i` (image-like inputs); `tabular`, when given, maps the raw
    `(cat, cont)` to the model's inputs instead.
    """

    def __init__(self, model: nn.Module, steps: list[list[nn.Module]] | None = None, tabular: nn.Module | None = None,
                 activation: Any = None):
        super().__init__()
        self.model, self.tabular, self.activation = model, tabular, activation
        self.steps = nn.ModuleList(nn.Sequential(*s) for s in (steps or []))

    def forward(self, *xs: Tensor) -> Tensor:
        if self.tabular is not None:
            xs = self.tabular(*xs)
        else:
            xs = tuple(s(x) for s, x in zip(self.steps, xs))
        out = self.model(*xs)
        return self.activation(out) if self.activation is not None else out


# ---------------------------------------------------------------------------------------------- what the graph takes


def _plain(x: Any) -> Any:
    return x.as_subclass(Tensor) if isinstance(x, Tensor) and type(x) is not Tensor else x


def _is_tabular(dl) -> bool:
    ds = getattr(dl, "dataset", None)
    return all(hasattr(ds, a) for a in ("cat_names", "cont_names", "procs", "classes"))


def _tabular_spec(dl) -> dict:
    # Read what the procs learned (duck-typed: train does not import tabular): FillMissing's fill values and `_na`
    # columns, Normalize's means and stds, Categorify's vocabularies.
    ds = dl.dataset
    cat_names, cont_names = list(ds.cat_names), list(ds.cont_names)
    fill_all, na_cols, means, stds = {}, [], {}, {}
    for p in ds.procs:
        if hasattr(p, "fill_all") and hasattr(p, "na_dict"):
            fill_all.update(p.fill_all)
            if getattr(p, "add_col", False):
                na_cols += [c for c in p.na_dict if f"{c}_na" in cat_names]
        if isinstance(getattr(p, "means", None), dict) and isinstance(getattr(p, "stds", None), dict):
            means.update(p.means)
            stds.update(p.stds)
    na_names = [f"{c}_na" for c in na_cols]
    user_cats = [c for c in cat_names if c not in na_names]

    def code(col: str, v: bool) -> int:
        o2i = getattr(ds.classes[col], "o2i", None)
        return int(o2i[v]) if o2i is not None else int(v)

    # positions: the graph concatenates [user cats, na cats]; `order` puts them back in cat_names order
    concat = user_cats + na_names
    return {
        "cat_names": cat_names, "cont_names": cont_names, "user_cats": user_cats, "na_names": na_names,
        "fill": [float(fill_all.get(c, 0.0)) for c in cont_names],
        "has_fill": [c in fill_all for c in cont_names],
        "mean": [float(np.float32(means.get(c, 0.0))) for c in cont_names],
        "std": [float(np.float32(stds.get(c, 1.0))) for c in cont_names],
        "na_src": [cont_names.index(c) for c in na_cols],
        "na_true": [code(n, True) for n in na_names], "na_false": [code(n, False) for n in na_names],
        "order": [concat.index(c) for c in cat_names],
        "with_cont": bool(cont_names),
        "classes": {c: [str(v) for v in ds.classes[c]] for c in user_cats if c in ds.classes},
    }


def _raw_batch(dl) -> tuple:
    # The same validation batch, before the batch transforms (what a user has at inference). A plain torch
    # DataLoader has no batch transforms: its first batch is the raw input.
    if not hasattr(dl, "after_batch") or not hasattr(dl, "new"):
        b = next(iter(dl))
        return tuple(b) if isinstance(b, (list, tuple)) else (b,)
    return dl.new(after_batch=[], shuffle=False, drop_last=False).one_batch()


def _image_steps(dl, n_inp: int, raw: tuple) -> list[list[nn.Module]]:
    # Replay the validation batch transforms one by one: each must leave the inputs alone or be one the graph knows.
    pipe = getattr(dl, "after_batch", None)
    fs = list(getattr(pipe, "fs", []) or [])
    split_idx = 1  # what runs at inference is the validation behaviour, whichever loader gave the sample
    steps: list[list[nn.Module]] = [[] for _ in range(n_inp)]
    b = raw
    for t in fs:
        nb = t(b, split_idx=split_idx)
        for i in range(n_inp):
            x, y = b[i], nb[i]
            if y is x:
                continue
            if isinstance(t, IntToFloatTensor):
                step: nn.Module = _Div(t.div)
            elif isinstance(t, Normalize) and isinstance(getattr(t, "mean", None), Tensor):
                step = _Norm(cast(Tensor, t.mean), cast(Tensor, t.std))  # set together, as tensors
            else:
                raise ValueError(
                    f"export_onnx: the batch transform {type(t).__name__} changes validation inputs and cannot go in "
                    "the ONNX graph (it knows IntToFloatTensor and Normalize). Apply it at item level instead "
                    "(item_tfms, e.g. Resize), or remove it from batch_tfms before exporting.")
            with torch.no_grad():
                got = step(_plain(x))
            if got.shape != y.shape or not torch.allclose(got, _plain(y).to(got.dtype), atol=1e-5):
                raise ValueError(f"export_onnx: {type(t).__name__} did not act on input {i} as its ONNX version does "
                                 "(maximum difference "
                                 f"{(got - _plain(y)).abs().max().item() if got.shape == y.shape else 'shape'}); "
                                 "its parameters change per batch?")
            steps[i].append(step)
        b = nb
    return steps


def onnx_inputs(learn: Learner, batch: tuple | None = None, dl: DataLoader | None = None) -> dict[str, np.ndarray]:
    """The inputs of `learn`'s ONNX graph (names to numpy arrays) for a batch of `dl` (default the validation
    loader's first batch): what a user feeds onnxruntime. A tabular batch (processed codes and normalised values) is
    mapped back to raw values, NaN where the `_na` column says missing."""
    dl = dl if dl is not None else learn.dls.valid
    n_inp = int(getattr(learn.dls, "n_inp", 1) or 1)
    if _is_tabular(dl):
        spec = _tabular_spec(dl)
        b = batch if batch is not None else dl.one_batch()
        cat = _plain(b[0]).cpu().long()
        out = {"x_cat": cat[:, [spec["cat_names"].index(c) for c in spec["user_cats"]]].numpy().astype(np.int64)}
        if spec["with_cont"]:
            cont = _plain(b[1]).cpu().float()
            raw = cont * torch.tensor(spec["std"]) + torch.tensor(spec["mean"])
            for src, n, t in zip(spec["na_src"], spec["na_names"], spec["na_true"]):
                raw[cat[:, spec["cat_names"].index(n)] == t, src] = float("nan")
            out["x_cont"] = raw.numpy().astype(np.float32)
        return out
    if batch is not None:
        raise ValueError("onnx_inputs: for image-like inputs pass no batch (the graph takes the loader's batch BEFORE "
                         "its batch transforms, which this function rebuilds from `dl`)")
    raw = _raw_batch(dl)
    names = _input_names(n_inp)
    return {n: _plain(raw[i]).cpu().numpy() for i, n in enumerate(names)}


def _act_name(act: Any) -> str | None:
    if act is None:
        return None
    f = getattr(act, "func", act)
    return getattr(f, "__qualname__", None) or type(f).__name__


def _input_names(n: int) -> list[str]:
    return ["x"] if n == 1 else [f"x{i}" for i in range(n)]


# ---------------------------------------------------------------------------------------------- export


def export_onnx(learn: Learner, fname: str | os.PathLike[str] = "model.onnx", dl: DataLoader | None = None,
                activation: bool = True, opset: int | None = None, verify: bool = True, atol: float = 1e-4) -> Path:
    """Write `learn.model` to `fname` as ONNX, with the validation input preprocessing in the graph and the loss's
    activation at the end (module docstring: exactly what it takes).

    `fname` follows the learner's one path rule (`tiers.train.io.paths`): relative to `learn.path / learn.model_dir`
    unless absolute, `.onnx` added to a name without a suffix; in distributed training only rank 0 writes. The batch
    size is dynamic. With `verify`, onnxruntime runs the file on a validation batch and its outputs must match
    PyTorch's within `atol`, else `RuntimeError` and no file is left behind. Returns the file's path.
    """
    onnx, ort = import_onnx_extra()
    if dl is None:
        dl = learn.dls.valid
        if hasattr(dl, "__len__") and len(dl) == 0:  # no validation set: a training batch is as good a sample
            dl = learn.dls.train
    target = learner_file(learn, fname, suffix=".onnx")
    return write_once(target, lambda t: _export(learn, t, dl, activation, opset, verify, atol, onnx, ort))


def _export(learn, fname: Path, dl, activation: bool, opset: int | None, verify: bool, atol: float, onnx,
            ort) -> Path:
    n_inp = int(getattr(learn.dls, "n_inp", 1) or 1)
    act = getattr(learn.loss_func, "activation", None) if activation else None
    if _is_tabular(dl):
        spec = _tabular_spec(dl)
        wrapper = OnnxModel(learn.model, tabular=_TabularPrep(spec), activation=act)
        names = ["x_cat", "x_cont"] if spec["with_cont"] else ["x_cat"]
        meta_inputs = {
            "x_cat": {"dtype": "int64", "shape": ["batch", len(spec["user_cats"])], "columns": spec["user_cats"],
                    "means": "index of each value in classes[column]; 0 = missing or unseen"},
            "x_cont": {"dtype": "float32", "shape": ["batch", len(spec["cont_names"])], "columns": spec["cont_names"],
                     "means": "raw values, NaN where missing"},
        }
        classes = spec["classes"]
    else:
        raw = _raw_batch(dl)
        steps = _image_steps(dl, n_inp, raw)
        wrapper = OnnxModel(learn.model, steps=steps, activation=act)
        names = _input_names(n_inp)
        # more dynamic input axes a model may declare, {axis: name} (text classifiers: 1, the sequence length)
        dyn = {0: "batch", **getattr(learn.model, "onnx_dynamic_axes", {})}
        meta_inputs = {n: {"dtype": str(raw[i].dtype).replace("torch.", ""),
                           "shape": [dyn.get(a, d) for a, d in enumerate(raw[i].shape)],
                           "means": "the validation batch before its batch transforms (images: 0..255 NCHW)"}
                       for i, n in enumerate(names)}
        classes = {}
    feeds = onnx_inputs(learn, dl=dl)
    args = tuple(torch.from_numpy(feeds[n]) for n in names)
    if args[0].shape[0] < 2:
        raise ValueError(f"export_onnx: the validation batch has {args[0].shape[0]} row(s); the dynamic batch axis "
                         "needs a sample of at least 2 (pass dl= a loader with bs >= 2)")
    model = learn.model
    was_training = model.training
    device = next(iter(model.parameters()), torch.empty(0)).device
    wrapper.cpu().eval()
    try:
        with torch.no_grad():
            ref = wrapper(*args)
        axes = {0: "batch", **getattr(learn.model, "onnx_dynamic_axes", {})}  # text models: {1: "seq_len"} too
        dims = {a: torch.export.Dim(n, min=1) for a, n in axes.items()}
        with atomic_path(fname) as tmp_file:  # the one atomic writer: renamed over fname only once verified
            tmp = str(tmp_file)
            with warnings.catch_warnings():
                # several inputs share the one batch axis: the exporter says it keeps one name for it, as intended
                warnings.filterwarnings("ignore", r".*axis name: batch will not be used", UserWarning)
                torch.onnx.export(wrapper, args, tmp, input_names=names, output_names=["output"],
                                  dynamic_shapes=(tuple(dict(dims) for _ in names),), opset_version=opset,
                                  dynamo=True, external_data=False, verbose=False)
            proto = onnx.load(tmp)
            onnx.checker.check_model(proto)
            vocab = getattr(learn.dls, "vocab", None)
            meta = {"tiers.inputs": json.dumps(meta_inputs), "tiers.classes": json.dumps(classes),
                    "tiers.activation": json.dumps(_act_name(act))}
            if vocab is not None:
                # a vocabulary per input/target (text: [tokens, classes]): one list each
                nested = len(vocab) > 0 and all(isinstance(vs, (list, tuple)) or hasattr(vs, "o2i") for vs in vocab)
                meta["tiers.vocab"] = json.dumps([[str(v) for v in vs] for vs in vocab] if nested else
                                                 [str(v) for v in vocab])
            onnx.helper.set_model_props(proto, meta)
            onnx.save(proto, tmp)
            if verify:
                sess = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
                got = sess.run(None, {n: feeds[n] for n in names})[0]
                want = ref.detach().cpu().numpy()
                diff = float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
                if not diff <= atol:
                    raise RuntimeError(f"export_onnx: onnxruntime's outputs differ from PyTorch's by {diff:.3g} "
                                       f"(> atol={atol}) on a validation batch; the file was not written. An op "
                                       "exports differently (report it), or pass a larger atol")
    finally:
        model.to(device).train(was_training)
    return fname
