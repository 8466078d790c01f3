"""Use only tiers-pipeline inside a plain PyTorch Dataset (`pip install tiers-pipeline`).

A reversible, type-dispatched preprocessing pipeline: the same Transform treats the image and the
label of an (x, y) pair differently, learns its state (normalisation stats, a vocabulary) in
`setup`, and `decode` turns a processed item back into something readable.

    python examples/pipeline_in_torch_dataset.py
"""

import torch
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, Dataset

from tiers.pipeline import Pipeline, Transform


class Label(str):
    """A class name: its own type, so transforms can dispatch on it."""


class Vocab(Transform):
    """Label <-> index, with the vocabulary learned in setup."""

    def setups(self, items):
        self.vocab = sorted({y for _, y in items})
        self.o2i = {v: i for i, v in enumerate(self.vocab)}

    def encodes(self, y: Label):
        return torch.tensor(self.o2i[y])

    def decodes(self, y: torch.Tensor):
        return Label(self.vocab[int(y)]) if y.ndim == 0 else y


class Standardize(Transform):
    """Pixels to zero mean, unit variance, with statistics learned in setup."""

    order = 1  # after Vocab, so setup sees (tensor, tensor) pairs

    def setups(self, items):
        xs = torch.stack([x for x, _ in items])
        self.mean, self.std = xs.mean(), xs.std()

    def encodes(self, x: torch.Tensor):
        return (x - self.mean) / self.std if x.ndim == 2 else x

    def decodes(self, x: torch.Tensor):
        return x * self.std + self.mean if x.ndim == 2 else x


class DigitsDataset(Dataset):
    """A plain torch Dataset whose __getitem__ runs a tiers Pipeline."""

    def __init__(self, items, pipe):
        self.items, self.pipe = items, pipe

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.pipe(self.items[i])


def main():
    digits = load_digits()
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    items = [(torch.tensor(img, dtype=torch.float32), Label(names[t])) for img, t in zip(digits.images, digits.target)]
    pipe = Pipeline([Vocab(), Standardize()])
    pipe.setup(items)  # each transform learns its state, in order
    ds = DigitsDataset(items, pipe)
    x, y = next(iter(DataLoader(ds, batch_size=32, shuffle=True)))
    print(f"batch: x {tuple(x.shape)} mean {x.mean():.2f} std {x.std():.2f}; y {y[:8].tolist()}")
    back_x, back_y = pipe.decode(ds[0])
    print(f"decoded item 0: label {back_y!r}, pixels restored: {torch.allclose(back_x, items[0][0], atol=1e-4)}")


if __name__ == "__main__":
    main()
