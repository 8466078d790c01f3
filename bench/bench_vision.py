"""Benchmarks of tiers.vision: batch augmentation throughput, and accuracy on the digits folder.

    hatch run bench:python bench/bench_vision.py      (fastai 2.8.12 installed: its column is filled)
    .venv-dev/bin/python bench/bench_vision.py         (without fastai: "fastai not installed")

1. Augmentation throughput (CPU): images/s of `aug_transforms(size=...)` on a float batch (flip, warp, rotate,
   zoom, brightness, contrast, resize: one resampling) against torchvision.transforms.v2 doing comparable work per
   item (random flip, perspective, affine rotate+scale, colour jitter, resize), the way a torchvision user
   augments in the Dataset. Same input batch, best of N, interleaved, one thread each (the machine is shared).
   fastai's `aug_transforms` runs in a subprocess (importing fastai patches PIL/pathlib/torch), where torchvision
   is measured again so its figure is a ratio taken side by side too.
2. Accuracy: `vision_learner(dls, xresnet18-like, pretrained=False)` + `fit_one_cycle` on the digits folder
   (scikit-learn's 1797 8x8 digits upscaled to 28x28, the 80/20 split of `make_digits_folder`), reported with
   fastai 2.8.12 trained the same way on the same folder (in a subprocess).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

BS, SRC, SIZE = 32, 192, 160
EPOCHS, LR, WIDEN = 8, 2e-2, 0.25


def _best(f, n: int) -> float:
    best = float("inf")
    for _ in range(n):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best


def _batch():
    g = torch.Generator().manual_seed(0)
    return torch.rand(BS, 3, SRC, SRC, generator=g)


_TV_SETUP = """
from torchvision.transforms import v2
tv = v2.Compose([
    v2.RandomHorizontalFlip(0.5),
    v2.RandomApply([v2.RandomPerspective(distortion_scale=0.2, p=1.0)], p=0.75),
    v2.RandomApply([v2.RandomAffine(degrees=10, scale=(1.0, 1.1))], p=0.75),
    v2.RandomApply([v2.ColorJitter(brightness=0.2, contrast=0.2)], p=0.75),
    v2.Resize((SIZE, SIZE), antialias=True),
])
def torchvision_per_item(x):
    return torch.stack([tv(im) for im in x])
"""


def _torchvision():
    ns = {"torch": torch, "SIZE": SIZE}
    exec(_TV_SETUP, ns)
    return ns["torchvision_per_item"]


def _ours():
    from tiers.tensors import TensorImage
    from tiers.vision import aug_transforms

    tfms = aug_transforms(size=SIZE)

    def f(x):
        b = TensorImage(x)
        for t in tfms:
            b = t(b, split_idx=0)
        return b

    return f


_FASTAI_AUG = """
import json, sys, time, torch
torch.set_num_threads(1)
from fastai.vision.augment import aug_transforms
from fastai.torch_core import TensorImage
BS, SRC, SIZE, N = {BS}, {SRC}, {SIZE}, {N}
g = torch.Generator().manual_seed(0)
x = torch.rand(BS, 3, SRC, SRC, generator=g)
tfms = aug_transforms(size=SIZE)
def fa(x):
    b = TensorImage(x)
    for t in tfms: b = t(b, split_idx=0)
    return b
{TV}
def best(f):
    r = float('inf')
    for _ in range(N):
        t = time.perf_counter(); f(x); r = min(r, time.perf_counter() - t)
    return r
fa(x); torchvision_per_item(x)
t_fa, t_tv = best(fa), best(torchvision_per_item)
print(json.dumps(dict(fastai=t_fa, torchvision=t_tv)))
"""


def _fastai_available() -> bool:
    try:
        import importlib.util

        return importlib.util.find_spec("fastai") is not None
    except Exception:
        return False


def _subprocess_json(code: str, timeout: float) -> dict | None:
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if out.returncode != 0:
        print(out.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_augment(quick: bool = False) -> dict:
    n = 2 if quick else 3
    torch.set_num_threads(1)
    x = _batch()
    ours, tv = _ours(), _torchvision()
    ours(x), tv(x)  # warm up (lazy imports, allocator)
    t_ours, t_tv = float("inf"), float("inf")
    for _ in range(n):  # interleaved: both see the same machine load
        t_ours = min(t_ours, _best(lambda: ours(x), 1))
        t_tv = min(t_tv, _best(lambda: tv(x), 1))
    ratio = t_tv / t_ours  # speed-up over torchvision: higher is better
    fastai = "fastai not installed"
    if _fastai_available():
        tv_code = _TV_SETUP.replace("SIZE", str(SIZE))
        code = _FASTAI_AUG.format(BS=BS, SRC=SRC, SIZE=SIZE, N=n, TV=tv_code)
        res = _subprocess_json(code, timeout=120)
        if res is not None:
            fastai = (f"{BS / res['fastai']:.0f} img/s = {res['torchvision'] / res['fastai']:.2f}x its torchvision "
                      f"({BS / res['torchvision']:.0f} img/s)")
        else:
            fastai = "fastai run failed"
    return dict(
        benchmark=f"aug_transforms(size={SIZE}) on a {BS}x3x{SRC}x{SRC} float batch, CPU, 1 thread",
        ours=f"{BS / t_ours:.0f} img/s",
        baseline=f"torchvision.transforms.v2 per item (flip, perspective, affine, jitter, resize): {BS / t_tv:.0f} img/s",
        ratio=round(ratio, 2),
        higher_is_better=True,
        fastai=fastai,
        goal=">= 2x torchvision per-item (fastai 2.8.12 measured 1.2x)",
        met=ratio >= 2.0,
    )


_FASTAI_ACC = """
import json, time, torch
from functools import partial
torch.set_num_threads(1)
from fastai.vision.all import *
set_seed(0)
path = Path({path!r})
dls = ImageDataLoaders.from_folder(path, bs=64, img_cls=PILImageBW, device='cpu',
                                   batch_tfms=aug_transforms(do_flip=False, max_rotate=10, max_warp=0.1, max_lighting=0.1))
learn = vision_learner(dls, partial(xresnet18, widen={widen}), pretrained=False, n_in=1, metrics=accuracy)
t = time.perf_counter()
with learn.no_bar(), learn.no_logging():
    learn.fit_one_cycle({epochs}, {lr})
print(json.dumps(dict(acc=float(learn.validate()[1]), secs=time.perf_counter() - t)))
"""


def bench_accuracy(quick: bool = False) -> dict:
    from functools import partial

    from tiers.tensors import set_seed
    from tiers.train import accuracy
    from tiers.vision import (
        ImageDataLoaders,
        PILImageBW,
        aug_transforms,
        make_digits_folder,
        vision_learner,
        xresnet18,
    )

    epochs = 4 if quick else EPOCHS
    torch.set_num_threads(1)
    path = make_digits_folder(Path(tempfile.gettempdir()) / "tiers_bench_digits")
    set_seed(0)
    dls = ImageDataLoaders.from_folder(path, bs=64, img_cls=PILImageBW, device="cpu",
                                       batch_tfms=aug_transforms(do_flip=False, max_rotate=10, max_warp=0.1,
                                                                 max_lighting=0.1))
    learn = vision_learner(dls, partial(xresnet18, widen=WIDEN), pretrained=False, metrics=accuracy)
    t = time.perf_counter()
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(epochs, LR)
    secs = time.perf_counter() - t
    acc = float(learn.validate()[1])
    fastai = "fastai not installed"
    if _fastai_available() and not quick:
        res = _subprocess_json(_FASTAI_ACC.format(path=str(path), widen=WIDEN, epochs=epochs, lr=LR), timeout=900)
        fastai = "fastai run failed" if res is None else f"{res['acc']:.4f} in {res['secs']:.0f} s"
    elif quick:
        fastai = "skipped (--quick)"
    return dict(
        benchmark=f"digits folder (1437/360 split, 28x28): xresnet18(widen={WIDEN}), fit_one_cycle({epochs}, {LR}), CPU",
        ours=f"{acc:.4f} accuracy in {secs:.0f} s",
        baseline="goal 0.97",
        ratio=round(acc / 0.97, 4),
        higher_is_better=True,
        fastai=fastai,
        goal=">= 97% validation accuracy in a few CPU minutes",
        met=acc >= 0.97,
    )


def run(quick: bool = False) -> list[dict]:
    """The vision benchmarks, as rows of the bench table."""
    return [bench_augment(quick), bench_accuracy(quick)]


if __name__ == "__main__":
    from _shared import print_table

    print_table(run(quick="--quick" in sys.argv))
