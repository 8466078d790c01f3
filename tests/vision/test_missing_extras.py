"""Without the optional extras `tiers-vision[samples]` (scikit-learn) and `tiers-vision[timm]`, tiers.vision
imports; the sample-dataset builders and timm architectures raise `ModuleNotFoundError` naming the library, the
feature and `pip install "tiers-vision[...]"`. The libraries are blocked (`sys.modules[name] = None`) in a fresh
interpreter."""

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
from tiers.vision import make_mnist_tiny
from tiers.vision.timm import create_timm_model

dest = sys.argv[1]
attempt("mnist", lambda: make_mnist_tiny(dest))
attempt("timm", lambda: create_timm_model("resnet18", 2, pretrained=False))
out["nothing_written"] = not any(__import__("pathlib").Path(dest).rglob("*.png"))
"""


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return _run(("sklearn", "timm"), CODE, str(tmp_path_factory.mktemp("samples") / "mnist_tiny"))


@pytest.mark.slow
def test_sample_data_names_the_samples_extra(result):
    _check(result["mnist"], "sklearn", "make_mnist_tiny", "tiers-vision", "samples")
    assert result["nothing_written"] and result["loaded"] == []


@pytest.mark.slow
def test_timm_architectures_name_the_timm_extra(result):
    _check(result["timm"], "timm", "timm architectures", "tiers-vision", "timm")
