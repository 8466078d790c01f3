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
