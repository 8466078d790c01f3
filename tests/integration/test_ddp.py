"""Two CPU processes (gloo) train with `learn.distrib_ctx()`: same metrics on both ranks, close to a one-process run,
and the checkpoint rank 0 saves loads in a single process with the same validation results."""

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from tiers.data import Categorize, Datasets, IndexSplitter, ItemGetter
from tiers.train import Learner, accuracy

pytestmark = pytest.mark.slow


def _learner(path, bs):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 4, generator=g)
    items = [(xi, "pos" if xi[0] + 0.5 * xi[1] > 0 else "neg") for xi in x]
    dsets = Datasets(items, [[ItemGetter(0)], [ItemGetter(1), Categorize()]], splits=IndexSplitter(range(480, 600))(items))
    model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 2))
    return Learner(dsets.dataloaders(bs=bs, val_bs=25), model, metrics=accuracy, path=path)


def _worker(rank, world, port, path):
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    learn = _learner(path, bs=16)
    with learn.distrib_ctx():
        learn.fit(4, 1e-2)
        learn.save("ddp")
        vals = learn.recorder.values
    with open(os.path.join(path, f"rank{rank}.json"), "w") as f:
        json.dump({"values": [[float(v) for v in r] for r in vals], "n_train_batches": len(learn.dls.train)}, f)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_matches_single(tmp_path):
    torch.set_num_threads(1)
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    # validation is gathered over both ranks: every rank reports the same loss and accuracy
    assert r0["values"][-1][1:] == pytest.approx(r1["values"][-1][1:], abs=1e-6)
    # the single-process run with the same global batch size (2 x 16) reaches about the same accuracy
    single = _learner(tmp_path, bs=32)
    with single.no_bar(), single.no_logging():
        single.fit(4, 1e-2)
    acc_ddp, acc_single = r0["values"][-1][2], single.recorder.values[-1][2]
    assert acc_ddp > 0.9 and abs(acc_ddp - acc_single) < 0.05
    # rank 0's checkpoint loads in one process and gives the metrics the ranks computed together
    ckpt = tmp_path / "models" / "ddp.pth"
    assert ckpt.exists()
    fresh = _learner(tmp_path, bs=32)
    fresh.load("ddp")
    with fresh.no_bar(), fresh.no_logging():
        loss, acc = fresh.validate()
    assert float(loss) == pytest.approx(r0["values"][-1][1], abs=1e-5)
    assert float(acc) == pytest.approx(acc_ddp, abs=1e-6)
