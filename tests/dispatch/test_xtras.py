import contextlib
import os
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tiers.dispatch import (
    ContextManagers,
    Inf,
    ReindexCollection,
    Stateful,
    fastuple,
    getcallable,
    instantiate,
    join_path_file,
    load_pickle,
    maps,
    nested_attr,
    noop,
    round_multiple,
    save_pickle,
    working_directory,
)


def test_fastuple_construction_and_elementwise_ops():
    assert fastuple() == () and fastuple(1) == (1,) and fastuple(1, 2) == (1, 2) and fastuple([1, 2]) == (1, 2)
    t = fastuple(224, 160)
    assert t // 2 == (112, 80) and t.mul(2) == (448, 320) and t.add((1, 2)) == (225, 162) and t - 4 == (220, 156)
    assert t + (1,) == (224, 160, 1) and t * 2 == (224, 160, 224, 160)  # tuple meaning kept, as in fastcore
    assert (10, 10) - fastuple(1, 2) == (9, 8) and 100 // fastuple(3, 7) == (33, 14) and t / (2, 4) == (112, 40)
    assert fastuple(1, 5).max(3) == (3, 5) and fastuple(1, 5).min((0, 9)) == (0, 5)
    assert fastuple(1, 2).add(1, (10, 20)) == (12, 23) and fastuple(2, 3).mul(2) == (4, 6)
    assert fastuple(1, 2).lt(2) == (True, False) and fastuple(1, 2).eq((1, 0)) == (True, False)
    assert -fastuple(1, -2) == (-1, 2) and abs(fastuple(-1, 2)) == (1, 2) and type(t / 2) is fastuple
    assert repr(t) == "(224, 160)"


@given(st.lists(st.integers(-100, 100), min_size=1, max_size=5), st.integers(1, 9))
def test_fastuple_matches_elementwise_loop(xs, k):
    t = fastuple(xs)
    assert t.mul(k) == tuple(x * k for x in xs) and t.add(t) == tuple(2 * x for x in xs)
    assert t % k == tuple(x % k for x in xs) and (t - t) == (0,) * len(xs) and t.add(t, 1) == tuple(2 * x + 1 for x in xs)


def test_inf():
    c = Inf.count
    assert [next(c) for _ in range(3)] == [0, 1, 2] and next(Inf.count) == 0
    assert next(Inf.zeros) == 0 and next(Inf.ones) == 1 and next(Inf.nones) is None


class Rec(Stateful):
    _stateattrs = ("lock",)

    def __init__(self):
        super().__init__()
        self.value = 3

    def _init_state(self):
        self.lock = object()


def test_stateful_skips_state_when_pickling():
    r = Rec()
    r2 = pickle.loads(pickle.dumps(r))
    assert r2.value == 3 and r2.lock is not r.lock and "lock" not in r.__getstate__()


def test_context_managers_and_working_directory(tmp_path):
    log = []

    @contextlib.contextmanager
    def cm(n):
        log.append(f"in{n}")
        yield
        log.append(f"out{n}")

    with ContextManagers([cm(1), cm(2)]) as cms:
        assert len(cms.default) == 2 and cms.count(None) == 0  # list methods reach through L
    assert log == ["in1", "in2", "out2", "out1"]
    here = os.getcwd()
    with working_directory(tmp_path):
        assert os.getcwd() == str(tmp_path)
    assert os.getcwd() == here


def test_reindex_collection():
    calls = []

    def tfm(o):
        calls.append(o)
        return o * 10

    rc = ReindexCollection([1, 2, 3], idxs=[2, 0, 1], tfm=tfm, cache=2)
    assert list(rc) == [30, 10, 20] and rc[0] == 30 and calls == [3, 1, 2, 3]  # 3 was evicted (cache of 2)
    assert rc[2] == 20 and calls == [3, 1, 2, 3]  # cached
    rc.reindex([0])
    assert len(rc) == 1 and rc[0] == 10
    rc.cache_clear()
    rc2 = ReindexCollection(list(range(20)))
    rc2.shuffle()
    assert sorted(rc2) == list(range(20)) and rc2.count(3) == 1  # forwarded to the list


def test_files(tmp_path):
    fn = join_path_file("obj", tmp_path / "sub", ext=".pkl")
    assert fn == tmp_path / "sub" / "obj.pkl" and fn.parent.is_dir()
    save_pickle(fn, {"a": [1, 2]})
    assert load_pickle(fn) == {"a": [1, 2]}
    f = object()
    assert join_path_file(f, tmp_path) is f


def test_small_extras():
    assert round_multiple(10, 8) == 8 and round_multiple(13, 8) == 16 and round_multiple(15, 8, round_down=True) == 8
    assert round_multiple((10, 17), 8) == (8, 16)

    class A:
        pass

    a = A()
    a.b = A()
    a.b.c = 5
    assert nested_attr(a, "b.c") == 5 and nested_attr(a, "b.zz", 0) == 0
    assert getcallable(a, "nope") is noop and getcallable(a, "__init__")
    assert list(maps(lambda x: x + 1, lambda x: x * 2, [1, 2])) == [4, 6]
    assert list(maps(str, [1], retain=lambda new, old: (new, old))) == [("1", 1)]
    assert isinstance(instantiate(A), A) and instantiate(a) is a
    with pytest.raises(TypeError):
        fastuple(1, 2) - "ab"
