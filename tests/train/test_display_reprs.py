"""What the display methods return and how their results read at the `>>>` prompt and in IPython: nothing that
a notebook would echo after a figure or table, and readable text where an object is the display."""

import io

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tiers.data import DataLoaders
from tiers.data.show import show_table, wrapped_table
from tiers.dispatch import L
from tiers.train import Learner


def _learner() -> Learner:
    x = torch.randn(64, 4)
    y = (x[:, 0] > 0).long()
    dls = DataLoaders(DataLoader(TensorDataset(x, y), batch_size=16), DataLoader(TensorDataset(x, y), batch_size=16))
    return Learner(dls, nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), loss_func=F.cross_entropy)


def test_model_summary_reads_as_its_table_at_the_prompt_and_in_ipython():
    s = _learner().summary()
    assert repr(s) == str(s) and repr(s).startswith("Sequential (input batch") and "\n" in repr(s)
    pretty = pytest.importorskip("IPython.lib.pretty").pretty  # IPython is only there where the host has it
    assert pretty(s) == str(s)  # IPython's display of a str subclass would otherwise be the quoted, escaped string


def test_l_reprs_stay_short_and_survive_holding_themselves():
    a = L([1, 2])
    a.append(a)
    assert repr(a) == "[1, 2, ...]"
    assert repr(L(range(100))) == "(#100) [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ...]"


def test_show_table_prints_pandas_layout_when_it_fits_and_wraps_when_not(monkeypatch):
    df = pd.DataFrame({"text": ["word " * 40, "short"], "label": ["pos", "neg"]})
    monkeypatch.setenv("COLUMNS", "60")
    out = io.StringIO()
    assert show_table(df, file=out) is None
    lines = out.getvalue().splitlines()
    assert max(map(len, lines)) <= 60 and lines == wrapped_table(df, 60).splitlines()
    out = io.StringIO()
    show_table(df.assign(text=["a", "b"]), file=out)
    assert out.getvalue() == df.assign(text=["a", "b"]).to_string() + "\n"  # fits: pandas' own layout


def test_show_table_splits_too_many_columns_into_blocks_that_fit(monkeypatch):
    df = pd.DataFrame({f"column_{i}": [f"value-{i}-{j} long words here" for j in range(3)] for i in range(8)})
    monkeypatch.setenv("COLUMNS", "60")
    out = io.StringIO()
    show_table(df, file=out)
    text = out.getvalue()
    assert max(map(len, text.splitlines())) <= 60
    assert all(f"column_{i}" in text for i in range(8)) and text.count("\n\n") >= 1  # blocks, one under the other
    words = text.split()
    assert all(f"value-{i}-{j}" in words for i in range(8) for j in range(3))  # every cell is there


@pytest.mark.parametrize("table", [False, True])
def test_loader_show_methods_return_nothing(table, capsys):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tiers.data import CategoryBlock, DataBlock, IndexSplitter, TransformBlock
    from tiers.tensors import TensorCategory, TensorImage

    if table:
        items = [[float(i), float(i) * 2] for i in range(8)]
        dblock = DataBlock(blocks=(TransformBlock, CategoryBlock), get_x=lambda o: torch.tensor(o),
                           get_y=lambda o: "big" if o[0] > 3 else "small", splitter=IndexSplitter([6, 7]))
    else:
        imgs = [TensorImage(torch.rand(3, 8, 8)) for _ in range(8)]
        items = list(range(8))
        dblock = DataBlock(blocks=(TransformBlock, CategoryBlock), get_x=lambda i: imgs[i],
                           get_y=lambda i: "odd" if i % 2 else "even", splitter=IndexSplitter([6, 7]))
    dls = dblock.dataloaders(items, bs=4, device="cpu")
    assert dls.show_batch(max_n=4) is None
    x, y = dls.one_batch()
    assert dls.train.show_results((x, y), TensorCategory(torch.tensor([1, 0, 1, 0])), max_n=2) is None
    out = capsys.readouterr().out
    if table:
        assert "column_0" in out or "prediction" in out
        assert "Series" not in out and "dtype" not in out
    else:
        assert len(plt.get_fignums()) == 2 and out == ""
    plt.close("all")
