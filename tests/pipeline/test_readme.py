"""The README's examples run as written, each after the install line the README gives for it."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "packages" / "pipeline" / "README.md"


def _section(title: str) -> str:
    """The install lines and the python code of the README section whose heading starts with `title`."""
    text = README.read_text().split(f"\n## {title}", 1)[1].split("\n## ", 1)[0]
    return text


def _code(section: str) -> str:
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_install_lines_match_what_each_example_imports():
    top = README.read_text().split("\n## ", 1)[0]
    assert "pip install tiers-pipeline\n" in top
    plain, with_torch = _section("Example: a reversible Pipeline"), _section("Example: a Transform inside a plain torch")
    assert "torch" not in _code(plain)
    assert "pip install tiers-pipeline torch" in with_torch and "import torch" in _code(with_torch)


def test_readme_plain_example_runs_without_importing_torch():
    """The first example is what `pip install tiers-pipeline` alone runs (AUDIT2 D6): checked in a fresh process."""
    code = _code(_section("Example: a reversible Pipeline"))
    probe = code + ("\nimport sys\nheavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy', "
                    "'pandas'))\nprint('HEAVY', heavy)\n")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "(1.0, 1) (8.0, 'dog') ['cat', 'dog']" in r.stdout, r.stdout
    assert "HEAVY []" in r.stdout, r.stdout


def test_readme_torch_example_runs(capsys):
    pytest.importorskip("torch", reason="the README's second example runs a torch Dataset")
    code = _code(_section("Example: a Transform inside a plain torch"))
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    assert "torch.Size([8, 3])" in out and ("'cat'" in out or "'dog'" in out)
