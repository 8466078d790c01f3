"""Benchmark of tiers.train: per-batch cost of `Learner.fit` (default callbacks) against a hand-written PyTorch loop.

    hatch run bench:python bench/bench_train.py      (fastai 2.8.12 installed: its column is filled)
    .venv-dev/bin/python bench/bench_train.py         (without fastai: "fastai not installed")

A tiny MLP (20 -> 64 -> 2, bs=64, CPU, one thread) trains for one epoch of 100 batches and validates on
10 batches (short runs, many interleaved repeats: the best of each catches quiet moments). Every
contender iterates the same torch DataLoaders and steps torch's SGD: the hand-written
loop directly, the Learners through their `OptimWrapper` (so the first two rows include the wrapper's
cost; the third row gives the hand-written loop the same wrapper, isolating the Learner's loop and
callbacks). Times are best-of-N CPU times over interleaved repeats (the machine is shared and noisy), per
batch (train + valid batches). fastai runs in a child process (with the plain loop measured again beside it), because
importing fastai patches torch (`Tensor.as_subclass`...) and would change the figures of everything else in the
process.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time
from functools import partial

import torch
import torch.nn.functional as F
from _shared import fastai_in_child, print_table  # noqa: E402
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset

BS, N_TRAIN_BATCHES, N_VALID_BATCHES = 64, 100, 10


class _TTY(io.StringIO):
    """A stream that says it is a terminal, so progress bars draw."""

    def isatty(self) -> bool:
        return True


class _Batches(TensorDataset):
    # Indexing with a list of indices returns the whole batch: no per-item collation in the loader.
    def __getitem__(self, idxs):
        return tuple(t[idxs] for t in self.tensors)


def _loaders():
    g = torch.Generator().manual_seed(0)
    n_tr, n_va = BS * N_TRAIN_BATCHES, BS * N_VALID_BATCHES
    x = torch.randn(n_tr + n_va, 20, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    tr, va = _Batches(x[:n_tr], y[:n_tr]), _Batches(x[n_tr:], y[n_tr:])
    train = DataLoader(tr, sampler=BatchSampler(RandomSampler(tr, generator=g), BS, drop_last=False), batch_size=None)
    valid = DataLoader(va, sampler=BatchSampler(SequentialSampler(va), BS, drop_last=False), batch_size=None)
    return train, valid


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 2))


def _plain_fit(train, valid, model, opt):
    "The loop a PyTorch user writes: train, then validate with loss and accuracy."
    model.train()
    for xb, yb in train:
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    tot, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for xb, yb in valid:
            out = model(xb)
            tot += F.cross_entropy(out, yb) * len(yb)
            correct += (out.argmax(1) == yb).sum()
            n += len(yb)
    return float(tot) / n, float(correct) / n


def _ours(train, valid, visible: bool):
    from tiers.data import DataLoaders
    from tiers.optim import OptimWrapper
    from tiers.train import Learner, ProgressCallback, accuracy

    dls = DataLoaders(train, valid)
    stream = _TTY() if visible else io.StringIO()
    learn = Learner(dls, _model(), loss_func=F.cross_entropy, opt_func=partial(OptimWrapper, opt=torch.optim.SGD),
                    lr=0.05, metrics=accuracy)
    learn.remove_cb(ProgressCallback).add_cb(ProgressCallback(file=stream))

    def fit():
        stream.seek(0)
        stream.truncate()
        learn.fit(1)

    return fit, learn


def _fastai(train, valid, shipped: bool):
    import fastai.callback.progress  # noqa: F401  (adds ProgressCallback to the defaults and Learner.no_bar)
    from fastai.data.core import DataLoaders
    from fastai.learner import Learner
    from fastai.metrics import accuracy
    from fastai.optimizer import OptimWrapper

    dls = DataLoaders(train, valid)
    learn = Learner(dls, _model(), loss_func=F.cross_entropy, opt_func=partial(OptimWrapper, opt=torch.optim.SGD),
                    lr=0.05, metrics=accuracy)

    def fit():
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            if shipped:
                learn.fit(1)
            else:
                with learn.no_bar(), learn.no_logging():
                    learn.fit(1)

    return fit, learn


def _best(fns: dict, repeat: int) -> dict:
    """Best CPU time of each function (process time: other processes on a shared machine don't count),
    interleaved so that slow phases of the machine hit all of them."""
    best = {k: float("inf") for k in fns}
    for _ in range(repeat):
        for k, f in fns.items():
            t0 = time.process_time()
            f()
            best[k] = min(best[k], time.process_time() - t0)
    return best


def _fastai_child(quick: bool) -> dict:
    """fastai's times per batch, with the plain loop's measured beside them, from a child process: importing fastai
    patches torch (`Tensor.as_subclass`...), which must not touch the process that measures tiers. {} without fastai."""
    return fastai_in_child(__file__, quick)


def _child_main(quick: bool) -> None:
    try:
        import fastai  # noqa: F401
    except ImportError:
        print(json.dumps({}))
        return
    torch.set_num_threads(1)
    train, valid = _loaders()
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    fns = {
        "plain": lambda: _plain_fit(train, valid, model, opt),
        "fastai_off": _fastai(train, valid, shipped=False)[0],
        "fastai_shipped": _fastai(train, valid, shipped=True)[0],
    }
    for f in fns.values():
        f()
    best = _best(fns, 5 if quick else 15)  # a reference figure: fewer repeats keep the file near a minute
    print(json.dumps({k: v / (N_TRAIN_BATCHES + N_VALID_BATCHES) for k, v in best.items()}))


def run(quick: bool = False) -> list[dict]:
    from tiers.optim import OptimWrapper

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fa_per = _fastai_child(quick)
        train, valid = _loaders()
        model_a, model_b = _model(), _model()
        opt_torch = torch.optim.SGD(model_a.parameters(), lr=0.05)
        opt_wrapped = OptimWrapper(model_b.parameters(), opt=torch.optim.SGD, lr=0.05)
        fns = {
            "plain": lambda: _plain_fit(train, valid, model_a, opt_torch),
            "plain_wrapped": lambda: _plain_fit(train, valid, model_b, opt_wrapped),
            "ours_silent": _ours(train, valid, visible=False)[0],
            "ours_visible": _ours(train, valid, visible=True)[0],
        }
        for f in fns.values():  # warm up (imports, allocator, first-call paths)
            f()
        best = _best(fns, 10 if quick else 40)
    finally:
        torch.set_num_threads(threads)  # run_all runs every benchmark in one process
    n_batches = N_TRAIN_BATCHES + N_VALID_BATCHES
    per = {k: v / n_batches for k, v in best.items()}
    fastai = bool(fa_per)

    def us(t: float) -> str:
        return f"{t * 1e6:.1f} us/batch"

    def fa(key: str, what: str) -> str:
        if not fastai:
            return "fastai not installed"
        return (f"{fa_per[key] / fa_per['plain']:.2f}x ({us(fa_per[key])}, {what}; plain loop "
                f"{us(fa_per['plain'])} in its own process)")

    goal = "<= 1.05x the plain loop (issue 19)"
    rows = []
    for key, base, label, base_label, fa_text in (
        ("ours_silent", "plain", "progress to a non-TTY stream (no bar, table printed)", "hand-written torch loop",
         fa("fastai_off", "bar and logging off") if fastai else "fastai not installed"),
        ("ours_visible", "plain", "progress bar drawn to a TTY stream", "hand-written torch loop",
         fa("fastai_shipped", "as shipped, bar and table") if fastai else "fastai not installed"),
        ("ours_silent", "plain_wrapped", "loop only: both sides step the same OptimWrapper(torch SGD)",
         "hand-written loop stepping the same wrapper", "n/a"),
    ):
        ratio = per[key] / per[base]
        rows.append({
            "benchmark": f"train: Learner.fit per batch, tiny MLP bs={BS} CPU 1 thread, {label}",
            "ours": us(per[key]),
            "baseline": f"{base_label} {us(per[base])}",
            "ratio": ratio,
            "fastai": fa_text,
            "goal": goal,
            "met": ratio <= 1.05,
        })
    return rows


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    if "--fastai-child" in sys.argv:
        _child_main(quick)
        sys.exit(0)
    print_table(run(quick="--quick" in sys.argv))
