import numpy as np
import pytest
import torch

from tiers.tabular import (
    Categorify,
    FillMissing,
    Normalize,
    TabDataLoader,
    TabularDataLoaders,
    TabularModel,
    TabularPandas,
    emb_sz_rule,
    get_emb_sz,
)
from tiers.tensors import TensorCategory

PROCS = [Categorify, FillMissing, Normalize]


def _dls(frame, **kw):
    return TabularDataLoaders.from_df(frame, procs=PROCS, cat_names=["c1", "c2"], cont_names=["x1", "x2"],
                                      y_names="y", valid_idx=list(range(300, 400)), bs=32, **kw)


def test_batches_index_the_processed_rows(frame):
    dls = _dls(frame)
    cats, conts, y = dls.valid.one_batch()
    assert cats.dtype == torch.int64 and cats.shape == (32, 3) and conts.shape == (32, 2)
    assert isinstance(y, TensorCategory)
    to = dls.valid_ds
    np.testing.assert_array_equal(cats.numpy(), to.items[to.cat_names].iloc[:32].to_numpy())
    assert len(dls.train) == 300 // 32 and len(dls.valid) == 4
    seen = torch.cat([b[0][:, 0] for b in dls.valid])
    assert len(seen) == 100


def test_shuffle_is_seeded_and_covers_every_row(frame):
    to = TabularPandas(frame.assign(i=np.arange(len(frame), dtype=float)), None, [], ["i"], "y",
                       reduce_memory=False)
    a = torch.cat([b[1][:, 0] for b in TabDataLoader(to, bs=64, shuffle=True, seed=3)])
    b = torch.cat([b[1][:, 0] for b in TabDataLoader(to, bs=64, shuffle=True, seed=3)])
    assert torch.equal(a, b) and sorted(a.tolist()) == list(range(len(frame)))
    dl = TabDataLoader(to, bs=64, shuffle=True, drop_last=True)
    assert sum(len(x[0]) for x in dl) == 384


def test_from_csv_and_default_valid_split(frame, tmp_path):
    frame.to_csv(tmp_path / "d.csv", index=False)
    dls = TabularDataLoaders.from_csv(tmp_path / "d.csv", procs=PROCS, cat_names=["c1", "c2"],
                                      cont_names=["x1", "x2"], y_names="y", bs=16)
    assert len(dls.valid_ds) == 80 and len(dls.train_ds) == 320 and dls.path == tmp_path
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        TabularDataLoaders.from_csv(tmp_path / "nope.csv")


def test_show_batch_prints_a_readable_frame(frame, capsys):
    dls = _dls(frame)
    dls.show_batch(max_n=5)
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["c1", "c2", "x1_na", "x1", "x2", "y"] and len(out) == 6
    df = dls.valid.show_batch(max_n=3, show=False)
    assert set(df["y"]) <= {"hi", "lo"}
    np.testing.assert_allclose(df["x2"].to_numpy(float), frame.x2.iloc[300:303].to_numpy(), rtol=1e-4)


def test_test_dl_processes_new_rows_with_training_state(frame):
    dls = _dls(frame)
    tdl = dls.test_dl(frame.iloc[300:340])
    batch = tdl.one_batch()
    assert len(batch) == 2  # inputs only
    ref = dls.valid.one_batch()
    assert torch.equal(batch[0], ref[0]) and torch.allclose(batch[1], ref[1])
    with pytest.raises(TypeError, match="DataFrame"):
        dls.test_dl([1, 2])


def test_emb_sz_rule_and_get_emb_sz(frame):
    assert [emb_sz_rule(n) for n in (2, 10, 100, 1000, 10**6)] == [2, 6, 21, 77, 600]
    to = TabularPandas(frame, PROCS, ["c1", "c2"], ["x1"], "y")
    assert get_emb_sz(to) == [(6, 4), (3, 3), (3, 3)]
    assert get_emb_sz(to, {"c1": 10}) == [(6, 10), (3, 3), (3, 3)]


def test_tabular_model_shapes_and_layers():
    m = TabularModel([(6, 4), (3, 2)], n_cont=3, out_sz=2, layers=[20, 10], ps=[0.1, 0.2], embed_p=0.1,
                     y_range=(0, 1))
    x_cat = torch.randint(0, 3, (8, 2))
    out = m(x_cat, torch.randn(8, 3))
    assert out.shape == (8, 2) and (out > 0).all() and (out < 1).all()
    linears = [mod for mod in m.layers.modules() if isinstance(mod, torch.nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(9, 20), (20, 10), (10, 2)]
    assert sum(isinstance(mod, torch.nn.BatchNorm1d) for mod in m.layers.modules()) == 2
    m2 = TabularModel([], n_cont=3, out_sz=1, layers=[4], bn_final=True, bn_cont=False, act_cls=torch.nn.GELU())
    assert m2(torch.zeros(5, 0, dtype=torch.long), torch.randn(5, 3)).shape == (5, 1)
    with pytest.raises(ValueError, match="ps"):
        TabularModel([], 3, 1, [4, 4], ps=[0.1])
