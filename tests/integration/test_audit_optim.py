"""Audit: the ready optimizers step exactly as fastai 2.8.12's on the same parameters and gradients (values recorded
from fastai in the bench environment): 8 steps of SGD (decoupled and L2 decay), Adam (AdamW and L2), RAdam, QHAdam,
RMSProp and ranger. Lamb and Larc are left out: tiers follows the LAMB paper's decay placement (see AUDIT notes)."""

import pytest
import torch

from tiers.optim.all import SGD, Adam, QHAdam, RAdam, RMSProp, ranger

CONFIGS = {
    "SGD": lambda p: SGD(p, lr=0.1, mom=0.9, wd=0.01),
    "SGD_l2": lambda p: SGD(p, lr=0.1, mom=0.9, wd=0.01, decouple_wd=False),
    "Adam": lambda p: Adam(p, lr=0.01, wd=0.01),
    "Adam_l2": lambda p: Adam(p, lr=0.01, wd=0.01, decouple_wd=False),
    "RAdam": lambda p: RAdam(p, lr=0.01, wd=0.01),
    "QHAdam": lambda p: QHAdam(p, lr=0.01, wd=0.01),
    "RMSProp": lambda p: RMSProp(p, lr=0.01, mom=0.9, wd=0.01),
    "ranger": lambda p: ranger(p, lr=0.01, wd=0.01),
}

FASTAI = {'Adam': [1.520521, -0.21406, -2.164988, 0.50176, -1.0529, -1.374088, 0.324374, 0.801167, -0.672152,
          -0.324371, -0.533733, 0.102935, -0.820808, 1.069094, -1.039479],
 'Adam_l2': [1.520445, -0.214246, -2.16474, 0.502079, -1.052999, -1.37408, 0.324654, 0.801354, -0.672404,
             -0.32465, -0.53404, 0.103031, -0.820984, 1.069188, -1.039581],
 'QHAdam': [1.525048, -0.20985, -2.167553, 0.509627, -1.052601, -1.378902, 0.323611, 0.807444, -0.682063,
            -0.323607, -0.542624, 0.097778, -0.826315, 1.068778, -1.039238],
 'RAdam': [1.524005, -0.263669, -2.168292, 0.530083, -1.060695, -1.380546, 0.367507, 0.806511, -0.683932,
           -0.367504, -0.558582, 0.161151, -0.825785, 1.077197, -1.047001],
 'RMSProp': [1.227636, -0.09607, -2.027429, -0.19241, 0.169011, -1.058376, 0.028387, -0.3021, 0.294835,
             -0.028392, 0.220477, -0.038181, 0.299599, -0.137951, 0.187479],
 'SGD': [1.005827, -0.066602, -1.974623, -0.270973, 0.717335, -0.954548, 0.02524, -0.840234, 0.675596,
         -0.025243, 0.351108, 0.055956, 0.852655, -0.68096, 0.74146],
 'SGD_l2': [0.957674, -0.067453, -1.919011, -0.274819, 0.731894, -0.938112, 0.025838, -0.847892, 0.683499,
            -0.02584, 0.356142, 0.056551, 0.860388, -0.697457, 0.755085],
 'ranger': [1.531962, -0.277672, -2.173043, 0.548762, -1.071642, -1.388861, 0.384577, 0.821753, -0.701234,
            -0.384574, -0.577168, 0.170719, -0.840675, 1.087922, -1.058141]}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_eight_steps_land_where_fastai_lands(name):
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(5, 3))
    opt = CONFIGS[name]([p])
    for i in range(8):
        p.grad = torch.sin(p.detach() * (i + 1))
        opt.step()
        opt.zero_grad()
    assert p.detach().flatten().tolist() == pytest.approx(FASTAI[name], abs=1e-5)
