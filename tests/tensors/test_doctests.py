"""The examples in the docstrings run and give what they show."""

import doctest
import importlib

import pytest

MODULES = ["base", "convert", "seed"]  # the modules whose docstrings have runnable examples


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    mod = importlib.import_module(f"tiers.tensors.{name}")
    res = doctest.testmod(
        mod, extraglobs={"torch": importlib.import_module("torch")}, optionflags=doctest.ELLIPSIS
    )
    assert res.attempted > 0 and res.failed == 0


def test_readme_example_runs():
    import re
    from pathlib import Path

    readme = Path(__file__).resolve().parents[2] / "packages" / "tensors" / "README.md"
    if not readme.exists():
        pytest.skip("README not shipped in this checkout")
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(), re.S)
    exec(compile(blocks[0], str(readme), "exec"), {})
