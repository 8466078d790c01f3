"""Benchmark of `learn.export_onnx` + onnxruntime against the PyTorch model's eager `get_preds` (report, no goal).

    hatch run bench:python bench/bench_onnx.py      (needs the extra tiers-train[onnx]: onnx, onnxruntime, onnxscript)

1. Vision: a resnet18 `vision_learner` on 64x64 digit images; one validation batch of 64 images. onnxruntime (CPU, one
   thread) runs the exported file (uint8 images in, IntToFloatTensor + Normalize + model + softmax in the graph)
   against `learn.get_preds` over a loader holding that same batch (one torch thread). Images per second, best of N rounds
   taking turns.
2. Tabular: a `tabular_learner` (adult-like sample, Categorify + FillMissing + Normalize) on a 1,024-row validation
   batch, same comparison (raw codes and values in; the procs' fill and normalisation in the graph).

Each row also checks that both sides give the same probabilities (max abs difference, must be <= 1e-4), and gives
the model's own eager forward on the already-processed batch for context (what get_preds adds: loading the batch
through its transforms, callbacks, gathering).
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _shared import print_table  # noqa: E402

from tiers.tabular import Categorify, FillMissing, Normalize, TabularDataLoaders, tabular_learner
from tiers.tabular.samples import make_adult_sample
from tiers.train import accuracy
from tiers.train.io.onnx import onnx_inputs
from tiers.vision import ImageDataLoaders, PILImageBW, make_mnist_tiny, resnet18, vision_learner
from tiers.vision.core import imagenet_stats


def _best_interleaved(fns, reps: int) -> list[float]:
    # Best of `reps` rounds, the contenders taking turns in each round: a busy moment on a shared machine then
    # slows all of them, not only the one that happened to run during it.
    for fn in fns:
        fn()  # warm-up (first-call allocations, onnxruntime's arena)
    best = [float("inf")] * len(fns)
    for _ in range(reps):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t)
    return best


def _session(path: Path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _row(name: str, learn, dl, n: int, reps: int, tmp: Path) -> dict:
    t = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        path = learn.export_onnx(tmp / f"{name.split()[0]}.onnx")
    export_s = time.perf_counter() - t
    sess = _session(path)
    feeds = onnx_inputs(learn, dl=dl) if "vision" in name else onnx_inputs(learn, dl.one_batch(), dl=dl)
    with contextlib.redirect_stdout(io.StringIO()):
        eager = learn.get_preds(dl=dl)[0].numpy()
    diff = float(np.abs(sess.run(None, feeds)[0] - eager).max())

    def run_eager():
        with contextlib.redirect_stdout(io.StringIO()):
            learn.get_preds(dl=dl)

    b = dl.one_batch()
    xs = tuple(x.as_subclass(torch.Tensor) for x in b[: int(getattr(learn.dls, "n_inp", 1) or 1)])
    model = learn.model.eval()

    def run_forward():  # the model alone on the already-processed batch: what get_preds adds on top of it
        with torch.no_grad():
            model(*xs)

    t_ort, t_eager, t_fwd = _best_interleaved([lambda: sess.run(None, feeds), run_eager, run_forward], reps)
    return dict(benchmark=f"{name}: export_onnx + onnxruntime CPU vs eager get_preds, one batch of {n}",
                ours=f"onnxruntime {n / t_ort:,.0f} items/s (export {export_s:.1f} s; max |diff| {diff:.1e})",
                baseline=f"eager get_preds {n / t_eager:,.0f} items/s (model forward alone {n / t_fwd:,.0f})",
                ratio=t_ort / t_eager, fastai="n/a",
                goal="report (no goal)", met=bool(diff <= 1e-4) or "probabilities differ")


def _vision(tmp: Path, reps: int) -> dict:
    path = make_mnist_tiny(tmp / "mnist64", size=64)
    dls = ImageDataLoaders.from_folder(path, bs=64, device="cpu", img_cls=PILImageBW, seed=0,
                                       batch_tfms=[Normalize.from_stats(imagenet_stats[0][:1], imagenet_stats[1][:1],
                                                                        cuda=False)])
    learn = vision_learner(dls, resnet18, pretrained=False, metrics=accuracy)
    with contextlib.redirect_stdout(io.StringIO()):
        learn.fit(1, 1e-3)
    n = min(64, len(dls.valid_ds))
    dl = dls.valid.new(bs=n, n=n, shuffle=False)  # exactly one batch, the same for both sides
    return _row("vision (resnet18, 1x64x64)", learn, dl, n, reps, tmp)


def _tabular(tmp: Path, reps: int) -> dict:
    df = pd.read_csv(make_adult_sample(tmp, n=6000))
    cats = ["workclass", "education", "marital-status", "occupation", "relationship", "race", "sex"]
    conts = ["age", "fnlwgt", "education-num", "hours-per-week", "capital-gain"]
    dls = TabularDataLoaders.from_df(df, path=tmp, procs=[Categorify, FillMissing, Normalize], cat_names=cats,
                                     cont_names=conts, y_names="salary", bs=256, valid_idx=list(range(4976, 6000)))
    learn = tabular_learner(dls, layers=[200, 100], metrics=accuracy)
    with contextlib.redirect_stdout(io.StringIO()):
        learn.fit(1, 1e-2)
    dl = dls.valid.new(bs=1024, shuffle=False)
    return _row("tabular (adult-like, 7 cat + 5 cont)", learn, dl, 1024, reps, tmp)


def run(quick: bool = False) -> list[dict]:
    "Run both rows (`quick`: fewer repeats)."
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    reps = 3 if quick else 15
    try:
        with tempfile.TemporaryDirectory() as d:
            return [_vision(Path(d), reps), _tabular(Path(d), reps)]
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    print_table(run(quick="--quick" in sys.argv))
