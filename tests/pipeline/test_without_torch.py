"""tiers-pipeline needs only tiers-dispatch: Transform and Pipeline set up, encode and decode with neither torch
nor numpy imported (checked in a fresh interpreter, wherever they happen to be installed)."""

import json
import subprocess
import sys

_PROBE = r"""
import json, sys
from tiers.pipeline import Pipeline, Transform

class Norm(Transform):
    def setups(self, items):
        xs = list(items)
        self.m = sum(xs) / len(xs)
    def encodes(self, x: float): return x - self.m
    def decodes(self, x: float): return x + self.m

class Vocab(Transform):
    def setups(self, items): self.vocab = sorted(set(items))
    def encodes(self, x: str): return self.vocab.index(x)
    def decodes(self, x: int): return self.vocab[x]

pn, pv = Pipeline([Norm()]), Pipeline([Vocab()])
pn.setup([1.0, 2.0, 3.0]); pv.setup(["b", "a", "b"])
enc = (pn(4.0), pv("b"))
dec = (pn.decode(enc[0]), pv.decode(enc[1]))
heavy = [m for m in ("torch", "numpy", "tiers.tensors") if m in sys.modules]
import importlib.util
star = {}
exec("from tiers.pipeline.all import *", star)
has_tensors = importlib.util.find_spec("tiers.tensors") is not None
print(json.dumps({"enc": enc, "dec": dec, "heavy": heavy, "has_tensors": has_tensors,
                  "star_heavy": [m for m in ("torch", "numpy") if m in sys.modules],
                  "star_names": all(n in star for n in ("Pipeline", "Transform", "L", "typedispatch"))}))
"""


def test_setup_encode_decode_load_neither_torch_nor_numpy(tmp_path):
    r = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["enc"] == [2.0, 1] and res["dec"] == [4.0, "b"]
    assert res["heavy"] == [], f"importing and running tiers.pipeline loaded {res['heavy']}"
    # the star surface has dispatch's and pipeline's names, and pulls in tiers.tensors (hence torch) only where
    # tiers-tensors is installed
    assert res["star_names"]
    if not res["has_tensors"]:
        assert res["star_heavy"] == [], f"tiers.pipeline.all loaded {res['star_heavy']} without tiers-tensors"
