import functools
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tiers.dispatch import (
    GetAttr,
    L,
    add_props,
    all_equal,
    camel2snake,
    chunked,
    class2attr,
    compose,
    delegate_attr,
    detuplify,
    equals,
    even_mults,
    first,
    flatten,
    groupby,
    ifnone,
    is_coll,
    is_iter,
    is_listy,
    last,
    listify,
    merge,
    noop,
    noops,
    num_cpus,
    only,
    partialler,
    range_of,
    risinstance,
    setify,
    snake2camel,
    store_attr,
    true,
    tuplify,
    uniqueify,
    using_attr,
    val2idx,
)


class Wrapper(GetAttr):
    _default = "inner"

    def __init__(self, inner):
        self.inner = inner


class Limited(GetAttr):
    _default = "inner"
    _xtra = ["count"]

    def __init__(self, inner):
        self.inner = inner


def test_getattr_forwards_and_errors():
    w = Wrapper([3, 1, 3])
    assert w.count(3) == 2 and "count" in dir(w) and "inner" in dir(w)
    with pytest.raises(AttributeError, match="'Wrapper' object has no attribute 'nope'.*'inner' component"):
        w.nope
    with pytest.raises(AttributeError):
        w.__len__  # dunders are never forwarded
    lim = Limited([1])
    assert lim.count(1) == 1
    with pytest.raises(AttributeError):
        lim.index
    w2 = pickle.loads(pickle.dumps(Wrapper([1])))
    assert w2.count(1) == 1
    blank = Wrapper.__new__(Wrapper)  # component not set yet: no recursion
    with pytest.raises(AttributeError):
        blank.count
    assert isinstance(dir(blank), list)


def test_delegate_attr():
    class D:
        def __init__(self):
            self.inner = [1]

        def __getattr__(self, k):
            return delegate_attr(self, k, "inner")

    assert D().count(1) == 1
    with pytest.raises(AttributeError, match="also looked in .inner"):
        D().zzz


def test_store_attr():
    class Box:
        def __init__(self, a, b, c=3, *, d=4):
            store_attr()

    b = Box(1, 2)
    assert (b.a, b.b, b.c, b.d) == (1, 2, 3, 4) and b.__stored_args__ == {"a": 1, "b": 2, "c": 3, "d": 4}

    class Some:
        def __init__(self, a, b, c):
            store_attr("a, c", extra=9)

    s = Some(1, 2, 3)
    assert s.a == 1 and s.c == 3 and s.extra == 9 and not hasattr(s, "b")

    class But:
        def __init__(self, a, b):
            store_attr(but=["b"])

    assert not hasattr(But(1, 2), "b")

    class Slotted:
        __slots__ = ("a",)

        def __init__(self, a, b=0):
            store_attr()

    sl = Slotted(5)
    assert sl.a == 5 and not hasattr(sl, "__stored_args__")

    class Cast:
        def __init__(self, a: int, b: str):
            store_attr(cast=True)

    c = Cast("4", 5)
    assert c.a == 4 and c.b == "5"

    def init(obj, x):
        store_attr(self=obj)

    o = type("O", (), {})()
    init(o, 3)
    assert o.x == 3 and not hasattr(o, "obj")

    class Bad:
        def __init__(self, a):
            store_attr("zz")

    with pytest.raises(NameError, match="zz"):
        Bad(1)


def test_add_props():
    class DLs:
        train, valid = add_props(lambda i, self: self.loaders[i], lambda i, self, v: self.loaders.__setitem__(i, v))

        def __init__(self):
            self.loaders = ["t", "v"]

    d = DLs()
    assert (d.train, d.valid) == ("t", "v")
    d.valid = "v2"
    assert d.loaders == ["t", "v2"]


def test_small_helpers():
    assert noop(3, 4, k=1) == 3 and noop() is None and noops(None, 5) == 5 and true(1, x=2)
    assert ifnone(None, 1) == 1 and ifnone(0, 1) == 0
    assert listify(None) == [] and listify("ab") == ["ab"] and listify((1, 2)) == [1, 2] and listify(1, 2) == [1, 2]
    assert listify(int) == [int] and listify(list) == [list] and listify(L(1, 2)) == [1, 2]
    assert listify([1], match=3) == [1, 1, 1] and listify(iter([1]), use_list=True) == [1]
    assert tuplify([1, 2]) == (1, 2) and tuplify(None) == ()
    assert detuplify([5]) == 5 and detuplify([]) is None and detuplify([1, 2]) == [1, 2]
    assert is_listy([1]) and is_listy(L()) and is_listy(x for x in []) and not is_listy("ab") and not is_listy(3)
    assert is_iter([1]) and not is_iter(3) and not is_iter(list) and is_coll([1]) and not is_coll(iter([]))
    assert first([3, 4]) == 3 and first([], lambda o: o) is None and first([1, 2, 3], lambda o: o > 1) == 2
    assert last([1, 2, 3]) == 3 and last([1, 2, 3], lambda o: o < 3) == 2
    assert only([1]) == 1
    with pytest.raises(ValueError, match="empty"):
        only([])
    with pytest.raises(ValueError, match="more than one"):
        only([1, 2])
    assert setify([1, 1]) == {1} and setify(None) == set()
    assert merge({"a": 1}, None, {"a": 2, "b": 3}) == {"a": 2, "b": 3}
    assert range_of("abc") == [0, 1, 2]
    assert uniqueify([2, 1, 2]) == [2, 1] and uniqueify([2, 1], sort=True, bidir=True) == ([1, 2], {1: 0, 2: 1})
    assert uniqueify([1], start=[0, 1]) == [0, 1]
    assert val2idx("ab") == {"a": 0, "b": 1}
    assert groupby(["aa", "b"], len) == {2: ["aa"], 1: ["b"]} and groupby([(1, 2)], 0, 1) == {1: [2]}
    assert list(flatten([1, [2, (3, [4])], "ab"])) == [1, 2, 3, 4, "ab"]


def test_compose_partialler():
    f = compose(lambda x: x + 1, lambda x: x * 2)
    assert f(3) == 8 and compose()(5) == 5
    a, b = (lambda x: x + 1), (lambda x: x * 2)
    a.order, b.order = 2, 1
    assert compose(a, b, order="order")(3) == 7
    g = partialler(a, order=None)
    assert g.order == 2 and g(1) == 2 and partialler(b, order=9).order == 9
    assert isinstance(g, functools.partial)


def test_names_and_predicates():
    assert camel2snake("TfmdDLHelper") == "tfmd_dl_helper" and camel2snake("ProgressCallback") == "progress_callback"
    assert snake2camel("a_b_cc") == "ABCc"

    class ProgressCallback:
        pass

    class Callback:
        pass

    assert class2attr(ProgressCallback(), "Callback") == "progress" and class2attr(Callback(), "Callback") == "callback"
    assert risinstance(int)(3) and risinstance((str, int), 3) and risinstance("int", 3) and not risinstance("str", 3)
    assert using_attr(len, "name")(type("P", (), {"name": "abc"})()) == 3
    assert even_mults(1e-4, 1e-2, 3) == [1e-4, 1e-3, 1e-2] and even_mults(1, 2, 1) == [2]
    assert num_cpus() >= 1


def test_equals():
    assert equals([1, [2, 3]], (1, [2, 3])) and not equals([1], [1, 2]) and equals("a", "a") and not equals("a", ["a"])
    assert equals({"a": [1]}, {"a": [1]}) and all_equal([1, 2], (1, 2)) and not all_equal(1, [1])


def test_chunked():
    assert list(chunked(range(5), 2)) == [[0, 1], [2, 3], [4]]
    assert list(chunked(range(5), 2, drop_last=True)) == [[0, 1], [2, 3]]
    assert list(chunked(range(6), n_chunks=3)) == [[0, 1], [2, 3], [4, 5]]
    with pytest.raises(ValueError, match="exactly one"):
        list(chunked(range(3)))


@given(st.lists(st.integers(), max_size=30), st.integers(1, 7))
def test_chunked_concat_roundtrip(xs, n):
    chunks = list(chunked(xs, n))
    assert [x for c in chunks for x in c] == xs and all(len(c) == n for c in chunks[:-1])
