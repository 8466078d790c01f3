"""Cherry-pick the callback Learner into a plain PyTorch project (`pip install tiers-train`).

The model, the datasets and the loaders are plain PyTorch; tiers adds the training loop with
callbacks, one-cycle scheduling, metrics and a progress bar. Data: scikit-learn's bundled digits.

    python examples/learner_in_plain_pytorch.py
"""

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tiers.data import DataLoaders
from tiers.optim import Adam
from tiers.train import Callback, Learner, accuracy


class Net(nn.Module):
    """Any nn.Module works unchanged."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10))

    def forward(self, x):
        return F.log_softmax(self.body(x), dim=1)


class PrintEveryEpoch(Callback):
    """A two-way callback: reads the learner's state after each training phase (validate() runs none)."""

    def after_train(self):
        print(f"epoch {self.epoch}: lr now {self.opt.hypers[0]['lr']:.2e}")


def main():
    torch.manual_seed(0)
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target)
    train, valid = TensorDataset(x[:1500], y[:1500]), TensorDataset(x[1500:], y[1500:])
    dls = DataLoaders(DataLoader(train, batch_size=64, shuffle=True), DataLoader(valid, batch_size=256))
    learn = Learner(dls, Net(), loss_func=F.nll_loss, opt_func=Adam, metrics=accuracy, cbs=PrintEveryEpoch())
    learn.fit_one_cycle(3, 3e-3)
    loss, acc = learn.validate()
    print(f"validation: loss {loss:.3f}, accuracy {acc:.3f}")


if __name__ == "__main__":
    main()
