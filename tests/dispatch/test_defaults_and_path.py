"""`defaults` (fastai's library-wide settings), `stop`, and tiers' `Path`: a `pathlib.Path` subclass with fastai's
`ls`/`mk_write`/`read_json`/`relpath`, so nothing foreign is patched."""

import json
import pathlib
import pickle

import pytest

from tiers.dispatch import Defaults, L, Path, defaults, num_cpus, patch, stop


def test_defaults_hold_fastai_settings():
    assert isinstance(defaults, Defaults)
    assert defaults.lr == 1e-3 and defaults.cpus == num_cpus() and defaults.use_cuda is None
    assert defaults.callbacks == [] and defaults.benchmark is True
    assert "lr=0.001" in repr(defaults)


def test_defaults_can_be_changed_and_restored(monkeypatch):
    monkeypatch.setattr(defaults, "lr", 3e-3)
    assert defaults.lr == 3e-3


def test_defaults_are_exported_by_the_star_import():
    ns: dict = {}
    exec("from tiers.dispatch.all import *", ns)
    assert ns["defaults"] is defaults and ns["Path"] is Path and ns["stop"] is stop


def test_stop_raises_stop_iteration_or_the_given_exception():
    with pytest.raises(StopIteration):
        stop()
    with pytest.raises(ValueError):
        stop(ValueError("x"))

    def gen():
        for i in range(5):
            yield i if i < 3 else stop()

    with pytest.raises(RuntimeError):  # PEP 479: a StopIteration inside a generator is a RuntimeError
        list(gen())
    produced = []
    try:
        while True:
            produced.append(len(produced) if len(produced) < 2 else stop())
    except StopIteration:
        pass
    assert produced == [0, 1]


def test_path_ls_lists_sorted_and_filters(tmp_path):
    p = Path(tmp_path)
    (p / "sub").mkdir()
    (p / "b.txt").write_text("b")
    (p / "a.png").write_bytes(b"")
    res = p.ls()
    assert isinstance(res, L) and [o.name for o in res] == ["a.png", "b.txt", "sub"]
    assert all(isinstance(o, Path) for o in res)
    assert [o.name for o in p.ls(n_max=1)] == ["a.png"]
    assert [o.name for o in p.ls(file_exts=[".txt"])] == ["b.txt"]
    assert [o.name for o in p.ls(file_type="image")] == ["a.png"]
    with pytest.raises(NotADirectoryError, match="b.txt"):
        (p / "b.txt").ls()


def test_path_is_a_pathlib_path_and_stays_one_through_operations(tmp_path):
    p = Path(tmp_path) / "x"
    assert isinstance(p, pathlib.Path) and type(p) is Path and type(p.parent) is Path
    assert p == pathlib.Path(tmp_path) / "x" and hash(p) == hash(pathlib.Path(tmp_path) / "x")
    assert not hasattr(pathlib.Path, "ls")  # nothing patched on pathlib
    assert type(pickle.loads(pickle.dumps(p))) is type(pathlib.Path())  # pickles as plain pathlib: needs no tiers


def test_path_mk_write_read_json_relpath(tmp_path):
    f = Path(tmp_path) / "deep" / "er" / "d.json"
    f.mk_write(json.dumps({"a": 1}))
    assert f.read_json() == {"a": 1}
    assert f.relpath(tmp_path) == Path("deep/er/d.json")


def test_patch_on_tiers_path_leaves_pathlib_alone(tmp_path):
    @patch
    def write(self: Path, txt, encoding="utf8"):
        self.parent.mkdir(parents=True, exist_ok=True)
        with self.open("w", encoding=encoding) as f:
            f.write(txt)

    try:
        (Path(tmp_path) / "a" / "b.txt").write("hi")
        assert (tmp_path / "a" / "b.txt").read_text() == "hi"
        assert not hasattr(pathlib.Path, "write")
    finally:
        del Path.write


def test_curried_operators_and_the_papers_L_listing():
    from tiers.dispatch import add, eq, ge, gt, le, lt, mul, ne, sub, truediv

    assert gt(4)(5) and not gt(4)(3) and gt(5, 4)  # one argument: a predicate on the other operand
    assert lt(4)(3) and le(4)(4) and ge(4)(4) and eq(2)(2) and ne(2)(3)
    assert add(1)(2) == 3 and sub(2)(5) == 3 and mul(3)(2) == 6 and truediv(2)(6) == 3
    d = dict(a=1, b=-5, d=6, e=9).items()
    assert L(d).itemgetter(1).map(abs).filter(gt(4)).sum() == 20
    assert L(d).itemgetter(0) == ["a", "b", "d", "e"] and L([1j]).attrgetter("imag") == [1.0]


def test_L_torch_methods_say_what_they_need_without_the_tensors_layer():
    import subprocess
    import sys

    code = ("import sys\nfrom tiers.dispatch import L\nassert 'torch' not in sys.modules\n"
            "try:\n    L([1], [2]).stack()\nexcept AttributeError as e:\n    print(e)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "needs tensors" in res.stdout and "tiers-tensors" in res.stdout
