"""The console progress bar of `ProgressCallback`: what it draws on a terminal and what it leaves behind."""

import io

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tiers.data import DataLoaders
from tiers.train import Learner, ProgressCallback


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def _learner(out) -> Learner:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 4, generator=g)
    y = (x[:, 0] > 0).long()
    dls = DataLoaders(DataLoader(TensorDataset(x[:64], y[:64]), batch_size=16),
                      DataLoader(TensorDataset(x[64:], y[64:]), batch_size=16))
    torch.manual_seed(0)
    learn = Learner(dls, nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), loss_func=F.cross_entropy)
    learn.remove_cb(ProgressCallback).add_cb(ProgressCallback(file=out, throttle=0))
    return learn


def test_bar_counts_every_batch_and_clears_its_line():
    out = _TTY()
    learn = _learner(out)
    learn.fit(2)
    text = out.getvalue()
    draws = text.split("\r")
    assert any(d.startswith("epoch 1/2 train: 100%|") and "4/4" in d for d in draws)
    assert any(d.startswith("epoch 2/2 valid: 100%|") and "2/2" in d for d in draws)
    assert any("loss " in d for d in draws if "train" in d)  # smoothed loss shown once a batch has run
    # each table row starts on a blank line (the bar was wiped first), and nothing of the bar is left at the end
    rows = [ln.rsplit("\r", 1)[-1] for ln in text.split("\n")]
    assert rows[0].split() == ["epoch", "train_loss", "valid_loss", "time"]
    assert [r.split()[0] for r in rows[1:3]] == ["0", "1"]
    last = text.split("\n")[-2].split("\r")
    assert text.endswith("\n") and last[-2].strip() == "" and "train" not in last[-1]
    assert learn.progress.bar is None


def test_bar_is_redrawn_in_place_without_leftovers():
    out = _TTY()
    learn = _learner(out)
    learn.fit(1)
    draws = [d for d in out.getvalue().split("\n")[0].split("\r") if d]
    # a shorter line than the one before pads with blanks, so no stale characters remain on the terminal
    for prev, cur in zip(draws, draws[1:]):
        assert len(cur) >= len(prev.rstrip()) or cur.strip() == ""
