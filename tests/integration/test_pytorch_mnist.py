"""Paper 3.2, adopting plain PyTorch: the official PyTorch MNIST example's `Net`, unchanged, trained by a tiers
`Learner` from plain `torch.utils.data.DataLoader`s, with the loss and metric passed in as plain functions.

Data: scikit-learn's bundled 8x8 digits (1,797 images, no download), resized to 28x28 like MNIST.
"""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from tiers.data import DataLoaders
from tiers.optim import Adam
from tiers.train import Learner, accuracy


class Net(nn.Module):
    # Copied from https://github.com/pytorch/examples/blob/main/mnist/main.py (unchanged).
    def __init__(self):
        super(Net, self).__init__()  # noqa: UP008 (kept exactly as in the example)
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


def digits_loaders(bs=64):
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (1797, 1, 8, 8) in [0, 1]
    x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False)
    x = (x - 0.1307) / 0.3081  # the example's MNIST normalisation
    y = torch.tensor(digits.target, dtype=torch.long)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    n_valid = 360
    train = DataLoader(TensorDataset(x[n_valid:], y[n_valid:]), batch_size=bs, shuffle=True)
    valid = DataLoader(TensorDataset(x[:n_valid], y[:n_valid]), batch_size=128)
    return train, valid


@pytest.mark.slow
def test_pytorch_mnist_net_trains_with_a_learner():
    torch.manual_seed(0)
    train_loader, valid_loader = digits_loaders()
    dls = DataLoaders(train_loader, valid_loader)
    learn = Learner(dls, Net(), loss_func=F.nll_loss, opt_func=Adam, metrics=accuracy)
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(1, 5e-3)
    valid_loss, acc = learn.validate()
    assert acc >= 0.9, f"accuracy {acc:.3f} after one epoch (chance is 0.1)"
    # predictions come back in the loader's order and agree with the metric
    preds, targs = learn.get_preds()
    assert preds.shape == (360, 10)
    assert (preds.argmax(1) == targs).float().mean().item() == pytest.approx(acc)
