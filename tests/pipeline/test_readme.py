"""The README's example runs as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "packages" / "pipeline" / "README.md"


def test_readme_example_runs(capsys):
    pytest.importorskip("torch", reason="the README example runs a torch Dataset")
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    assert "torch.Size([8, 3])" in out and ("'cat'" in out or "'dog'" in out)
