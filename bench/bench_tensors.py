"""Benchmarks of tiers.tensors: the cost of type retention on torch ops, and `as_plain` keeping it out of a model.

    hatch run bench:python bench/bench_tensors.py     (with fastai 2.8.12: the fastai column is filled)
    .venv-dev/bin/python bench/bench_tensors.py        (without it: "fastai not installed")

Ours and the plain-tensor baseline are measured side by side in one process, best of N interleaved repeats.
fastai is measured the same way (its TensorImage against a plain tensor) but in a subprocess, because importing
fastai.torch_core patches `torch.Tensor.as_subclass`, which would slow down the process it is imported in.
Both processes run torch with one intra-op thread: on a shared two-core machine the thread pool's stalls otherwise
swamp the microseconds measured here (with torch's default threads the 64x3x32x32 ratio measured 1.37x, not 1.26x).
"""

from __future__ import annotations

import json
import subprocess
import sys
import timeit

import torch

# (name, shape, ops per timing window, windows (full, quick), goal ratio). Short windows, many of them: on a
# shared machine the best window is the one no other process interrupted.
CASES = [
    ("per-op overhead, x * 2 on a 4-element tensor", (4,), 200, (200, 60), None),
    ("elementwise x * 2, TensorImage 64x3x32x32", (64, 3, 32, 32), 10, (200, 60), 1.5),
    ("elementwise x * 2, TensorImage 64x3x224x224", (64, 3, 224, 224), 1, (30, 10), 1.05),
]


def _best_pair(fa, fb, number: int, repeat: int) -> tuple[float, float]:
    "Best time per call (seconds) of fa and fb, measured interleaved so load spikes hit both."
    ta = tb = float("inf")
    for _ in range(repeat):
        ta = min(ta, timeit.timeit(fa, number=number) / number)
        tb = min(tb, timeit.timeit(fb, number=number) / number)
    return ta, tb


def _us(t: float) -> str:
    return f"{t * 1e6:.2f} us"


def _measure_ops(image_cls, quick: bool) -> list[tuple[float, float]]:
    "(typed, plain) seconds per `x * 2` for each case, with `image_cls` the typed class."
    res = []
    for _, shape, number, repeats, _ in CASES:
        plain = torch.rand(*shape)
        typed = image_cls(plain.clone())
        assert type(typed * 2) is image_cls
        res.append(_best_pair(lambda t=typed: t * 2, lambda p=plain: p * 2, number, repeats[quick]))
    return res


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 10),
    ).eval()


def _measure_model(image_cls, strip, quick: bool) -> tuple[float, float]:
    "(typed path, plain) seconds per forward of a small CNN on a 16x3x16x16 batch; `strip` is applied to the input."
    model, x = _model(), torch.rand(16, 3, 16, 16)
    typed = image_cls(x.clone())
    with torch.no_grad():
        return _best_pair(lambda: model(strip(typed)), lambda: model(x), 1, 60 if quick else 300)


FASTAI_SCRIPT = """
import json, sys
sys.path.insert(0, {here!r})
import bench_tensors as b
import torch
from fastai.torch_core import TensorImage
torch.set_num_threads(1)
quick = {quick!r}
ops = b._measure_ops(TensorImage, quick)
model = b._measure_model(TensorImage, lambda x: x, quick)
print(json.dumps({{"ops": ops, "model": model}}))
"""


def _fastai(quick: bool) -> dict | None:
    "fastai's figures from a subprocess, or None when fastai is not installed."
    try:
        import importlib.util

        if importlib.util.find_spec("fastai") is None:
            return None
    except (ImportError, ValueError):
        return None
    from pathlib import Path

    code = FASTAI_SCRIPT.format(here=str(Path(__file__).resolve().parent), quick=quick)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> list[dict]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(quick)
    finally:
        torch.set_num_threads(threads)


def _run(quick: bool) -> list[dict]:
    from tiers.tensors import TensorImage, as_plain

    fa = _fastai(quick)
    ops = _measure_ops(TensorImage, quick)
    rows = []
    for i, ((name, _, _, _, goal), (tt, tp)) in enumerate(zip(CASES, ops)):
        if fa is None:
            fastai = "fastai not installed"
        elif "error" in fa:
            fastai = f"fastai failed: {fa['error']}"
        else:
            ft, fp = fa["ops"][i]
            fastai = f"{ft / fp:.2f}x ({_us(ft - fp)} overhead)"
        ratio = tt / tp
        rows.append(
            {
                "benchmark": name,
                "ours": f"{_us(tt)}/op ({_us(tt - tp)} overhead)",
                "baseline": f"plain torch.Tensor {_us(tp)}/op",
                "ratio": ratio,
                "fastai": fastai,
                "goal": "report overhead (us)" if goal is None else f"ratio <= {goal}",
                "met": True if goal is None else ratio <= goal,
            }
        )

    # the training loop strips types before the model: forward cost with as_plain vs a plain input
    tt, tp = _measure_model(TensorImage, as_plain, quick)
    typed_fwd, _ = _measure_model(TensorImage, lambda x: x, quick)
    if fa is None or "error" in fa:
        fastai = "fastai not installed" if fa is None else f"fastai failed: {fa['error']}"
    else:
        ft, fp = fa["model"]
        fastai = f"{ft / fp:.2f}x (typed input all through the model)"
    rows.append(
        {
            "benchmark": "small CNN forward, 16x3x16x16 TensorImage batch via as_plain",
            "ours": f"{_us(tt)}/forward (typed input without as_plain: {typed_fwd / tp:.2f}x)",
            "baseline": f"plain tensor input {_us(tp)}/forward",
            "ratio": tt / tp,
            "fastai": fastai,
            "goal": "ratio <= 1.05",
            "met": tt / tp <= 1.05,
        }
    )
    return rows


if __name__ == "__main__":
    from _shared import print_table

    print_table(run(quick="--quick" in sys.argv))
