"""Child process for test_resume_kill: train, checkpoint every batch, print progress; optionally resume."""

import sys

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tiers.data import DataLoaders
from tiers.train import Callback, CheckpointCallback, Learner, resume_callback

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)
out, ckpt, resume, n_epoch = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4])
g = torch.Generator().manual_seed(0)
x = torch.randn(96, 6, generator=g)
y = (x[:, 0] > 0).long()
torch.manual_seed(0)
dls = DataLoaders(DataLoader(TensorDataset(x, y), 8, shuffle=True), DataLoader(TensorDataset(x[:32], y[:32]), 16))
model = nn.Sequential(nn.Linear(6, 16), nn.Dropout(0.3), nn.ReLU(), nn.Linear(16, 2))
learn = Learner(dls, model, loss_func=nn.CrossEntropyLoss(), lr=1e-2)
tick = Callback(after_batch=lambda self: print("B", self.learn.epoch, self.learn.iter, flush=True) if self.learn.training else None)
tick.order = 95
cbs, start = [CheckpointCallback(ckpt, every_n_batches=1), tick], 0
if resume:
    rcb, start = resume_callback(learn, ckpt)
    cbs.append(rcb)
with learn.no_logging(), learn.no_bar():
    learn.fit_one_cycle(n_epoch, 1e-2, cbs=cbs, start_epoch=start)
torch.save(learn.model.state_dict(), out)
print("DONE", flush=True)
