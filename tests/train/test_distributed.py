"""Tests of the distributed pieces that need no process group: sharding by `DistributedDL`, rank helpers."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tiers.data import DataLoader, Datasets, ItemGetter
from tiers.train import DistributedDL, DistributedTrainer, Learner, num_distrib, rank_distrib


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 60), world=st.integers(1, 4), bs=st.integers(1, 8), shuffle=st.booleans())
def test_shards_cover_every_item_once_per_epoch(n, world, bs, shuffle):
    dl = DataLoader(list(range(n)), bs=bs, shuffle=shuffle)
    shards = [DistributedDL(dl, rank=r, world_size=world, seed=3) for r in range(world)]
    for _epoch in range(2):
        seen = [torch.cat(list(s)).tolist() if len(s) else [] for s in shards]
        assert len({len(x) for x in seen}) == 1  # equal shares, so every rank takes the same number of steps
        assert all(len(s) == len(shards[0]) for s in shards)
        flat = [i for x in seen for i in x]
        assert sorted(set(flat)) == list(range(n))  # everything, and only padding repeated
        assert len(flat) - n < world or n < world


def test_reshuffles_per_epoch_same_on_all_ranks():
    dl = DataLoader(list(range(40)), bs=5, shuffle=True)
    a0, a1 = DistributedDL(dl, 0, 2, seed=1), DistributedDL(dl, 1, 2, seed=1)
    e1 = [torch.cat(list(a0)).tolist(), torch.cat(list(a1)).tolist()]
    e2 = [torch.cat(list(a0)).tolist(), torch.cat(list(a1)).tolist()]
    assert e1 != e2 and not set(e1[0]) & set(e1[1]) and not set(e2[0]) & set(e2[1])
    b0 = DistributedDL(dl, 0, 2, seed=1)
    assert torch.cat(list(b0)).tolist() == e1[0]  # the permutation depends on seed and epoch only


def test_unsharded_order_and_types_kept():
    items = [(torch.tensor([float(i)]), i % 2) for i in range(10)]
    ds = Datasets(items, [[ItemGetter(0)], [ItemGetter(1)]])
    dl = ds.dataloaders(bs=2)[0].new(shuffle=False, drop_last=False)
    parts = [DistributedDL(dl, r, 2) for r in range(2)]
    xs = [torch.cat([b[0] for b in p]).flatten().tolist() for p in parts]
    assert xs == [[0, 2, 4, 6, 8], [1, 3, 5, 7, 9]]


def test_bad_input_and_single_process():
    with pytest.raises(TypeError, match="tiers DataLoader"):
        DistributedDL([1, 2, 3])
    with pytest.raises(ValueError, match="rank 2"):
        DistributedDL(DataLoader(list(range(4)), bs=2), rank=2, world_size=2)
    assert rank_distrib() == 0 and num_distrib() == 0  # one definition (tiers.tensors): 0 outside distributed training
    import tiers.tensors
    assert num_distrib is tiers.tensors.num_distrib and rank_distrib is tiers.tensors.rank_distrib
    # Without a process group distrib_ctx is a no-op wrapper: training works and the callback leaves.
    from torch import nn
    from torch.utils.data import DataLoader as TDL
    from torch.utils.data import TensorDataset

    from tiers.data import DataLoaders

    torch.set_num_threads(1)
    x = torch.randn(64, 3)
    y = (x[:, 0] > 0).long()
    learn = Learner(DataLoaders(TDL(TensorDataset(x, y), batch_size=16), TDL(TensorDataset(x, y), batch_size=16)),
                    nn.Linear(3, 2))
    with learn.distrib_ctx():
        assert any(isinstance(c, DistributedTrainer) for c in learn.cbs)
        learn.fit(1)
    assert not any(isinstance(c, DistributedTrainer) for c in learn.cbs) and isinstance(learn.model, nn.Linear)
