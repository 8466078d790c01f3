"""Without the optional extra `tiers-text[sentencepiece]`, tiers.text imports;
`SentencePieceTokenizer` raises `ModuleNotFoundError` at construction naming sentencepiece and `pip install
"tiers-text[sentencepiece]"`. sentencepiece is blocked (`sys.modules[name] = None`) in a fresh interpreter."""

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
from tiers.text import SentencePieceTokenizer

attempt("construct", lambda: SentencePieceTokenizer(vocab_sz=60, cache_dir=sys.argv[1]))
"""


@pytest.mark.slow
def test_sentencepiece_tokenizer_names_the_extra_at_construction(tmp_path):
    result = _run(("sentencepiece",), CODE, str(tmp_path / "spm"))
    _check(result["construct"], "sentencepiece", "SentencePieceTokenizer", "tiers-text", "sentencepiece")
    assert result["loaded"] == [] and not (tmp_path / "spm").exists()
