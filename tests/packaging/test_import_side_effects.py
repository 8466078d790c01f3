"""Importing any tiers layer changes nothing outside tiers (torch, warnings, logging, RNGs, builtins)."""

import json
import subprocess
import sys

import pytest
from layers import LAYERS

_PROBE = r"""
import builtins, json, logging, pathlib, random, sys, warnings
import numpy as np, torch
def snapshot():
    return {
        "tensor": sorted(torch.Tensor.__dict__), "module": sorted(torch.nn.Module.__dict__),
        "path": sorted(pathlib.Path.__dict__), "builtins": sorted(dir(builtins)),
        "warnings": repr(warnings.filters), "root_log": [logging.getLogger().level, len(logging.getLogger().handlers)],
        "rand": random.getstate()[1][:4], "np": int(np.random.get_state()[1][0]),
        "torch_seed": int(torch.initial_seed()), "dtype": str(torch.get_default_dtype()),
        "threads": torch.get_num_threads(), "grad": torch.is_grad_enabled(),
    }
before = snapshot()
import importlib
importlib.import_module(sys.argv[1])
after = snapshot()
print(json.dumps({k: [before[k], after[k]] for k in before if before[k] != after[k]}))
"""


@pytest.mark.parametrize("layer", LAYERS)
def test_import_has_no_side_effects(layer):
    r = subprocess.run([sys.executable, "-c", _PROBE, f"tiers.{layer}.all"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {}, f"importing tiers.{layer}.all changed global state: {r.stdout}"
