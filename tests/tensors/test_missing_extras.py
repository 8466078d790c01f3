"""Without the optional extra `tiers-tensors[plots]` (matplotlib), tiers.tensors imports and computes; each
drawing function raises `ModuleNotFoundError` naming matplotlib, the function and `pip install
"tiers-tensors[plots]"`. matplotlib is blocked (`sys.modules["matplotlib"] = None`) in a fresh interpreter."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

PRELUDE = """
import json, sys
for name in BLOCKED:
    sys.modules[name] = None
out = {}

def attempt(key, f):
    try:
        f()
        out[key] = None
    except ModuleNotFoundError as e:
        out[key] = [type(e).__name__, e.name, str(e)]
"""
EPILOGUE = """
out["loaded"] = sorted(m for m in BLOCKED if sys.modules.get(m) is not None)
print("RESULT", json.dumps(out))
"""


def _run(blocked: tuple[str, ...], code: str, *args: str) -> dict:
    """Run `code` in a fresh interpreter where the modules `blocked` cannot be imported; its `out` dict back."""
    src = f"BLOCKED = {blocked!r}\n" + PRELUDE + textwrap.dedent(code) + EPILOGUE
    r = subprocess.run([sys.executable, "-c", src, *args], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.split("RESULT", 1)[1])


def _check(err, lib: str, feature: str, dist: str, extra: str) -> None:
    """`err` is the MissingExtraError of `feature` for `lib`, naming `dist[extra]` and the command."""
    assert err is not None, f"{feature} ran without {lib}"
    kind, name, msg = err
    assert kind == "MissingExtraError" and name == lib, err
    assert feature in msg and f"needs {lib}" in msg and f"{dist}[{extra}]" in msg, msg
    assert msg.endswith(f'pip install "{dist}[{extra}]"'), msg

CODE = """
import torch
from tiers.tensors import TensorBBox, TensorImage, TensorPoint, show_image, subplots

img = TensorImage(torch.rand(3, 8, 8))
out["computes"] = float((img * 2).sum()) > 0  # the tensors themselves need no matplotlib
attempt("show_image", lambda: show_image(img))
attempt("subplots", lambda: subplots(2, 2))
attempt("image_show", img.show)
attempt("points", TensorPoint.create([[1, 2], [3, 4]]).show)
attempt("bbox", TensorBBox.create([[0, 0, 5, 5]]).show)
"""


@pytest.fixture(scope="module")
def result():
    return _run(("matplotlib",), CODE)


@pytest.mark.slow
def test_tensors_work_without_matplotlib(result):
    assert result["computes"] is True and result["loaded"] == []


@pytest.mark.slow
@pytest.mark.parametrize("key, feature", [("show_image", "show_image"), ("subplots", "subplots"),
                                          ("image_show", "show_image"), ("points", "TensorPoint.show"),
                                          ("bbox", "TensorBBox.show")])
def test_each_drawing_function_names_the_plots_extra(result, key, feature):
    _check(result[key], "matplotlib", feature, "tiers-tensors", "plots")
