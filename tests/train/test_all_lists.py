"""The `__all__` of tiers.train and of its subpackages are literal lists (type checkers read only those), and each is
exactly the union of the `__all__` of the modules its `__init__` star-imports: a name added to a module and not to
the package's list (or left behind after a removal) fails here, naming it."""

import ast
import importlib
import inspect

import pytest

PACKAGES = ["tiers.train", "tiers.train.callbacks", "tiers.train.io", "tiers.train.metrics", "tiers.train.nn"]


def _init(pkg: str) -> ast.Module:
    return ast.parse(inspect.getsource(importlib.import_module(pkg)))


def _literal_all(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            v = node.value
            if isinstance(v, ast.List) and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in v.elts):
                return [e.value for e in v.elts]
            return None
    return None


def _star_imported(tree: ast.Module) -> list[str]:
    return [n.module for n in tree.body
            if isinstance(n, ast.ImportFrom) and n.module and any(a.name == "*" for a in n.names)]


@pytest.mark.parametrize("pkg", PACKAGES)
def test_all_is_a_literal_list_of_the_star_imported_modules_names(pkg):
    tree = _init(pkg)
    literal = _literal_all(tree)
    assert literal is not None, f"{pkg}.__all__ must be a literal list of strings (mypy cannot read a comprehension)"
    mod = importlib.import_module(pkg)
    assert mod.__all__ == literal
    assert len(literal) == len(set(literal)), sorted({n for n in literal if literal.count(n) > 1})
    sources = _star_imported(tree)
    assert sources, pkg
    expected = {n for src in sources for n in importlib.import_module(src).__all__}
    missing, extra = expected - set(literal), set(literal) - expected
    assert not missing, f"add to {pkg}.__all__: {sorted(missing)}"
    assert not extra, f"{pkg}.__all__ lists names no star-imported module exports: {sorted(extra)}"
    assert all(hasattr(mod, n) for n in literal)


def test_a_star_import_of_tiers_train_gives_every_public_name():
    ns: dict = {}
    exec("from tiers.train import *", ns)
    for sub in PACKAGES[1:]:
        for n in importlib.import_module(sub).__all__:
            assert ns[n] is getattr(importlib.import_module(sub), n), n
