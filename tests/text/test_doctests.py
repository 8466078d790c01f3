"""The examples in the docstrings of tiers.text run and give what they show."""

import doctest
import importlib

import pytest

MODULES = ["rules", "tokenizers", "parallel", "transforms", "loaders", "block", "awdlstm", "models", "samples",
           "learner", "callbacks"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    mod = importlib.import_module(f"tiers.text.{name}")
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert res.failed == 0
