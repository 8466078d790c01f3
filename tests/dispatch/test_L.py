import operator
import pickle
import random
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tiers.dispatch import L, coll_repr, cycle, is_bool, is_indexer, mask2idxs, zip_cycle


class FakeArray:
    "Duck-typed NumPy/torch index array: `tolist`, `__array__`, `ndim`, `dtype`."

    def __init__(self, data, dtype="int64"):
        self.data, self.dtype = data, dtype
        self.ndim = 0 if not isinstance(data, list) else 1

    def tolist(self):
        return self.data

    def __array__(self):
        raise AssertionError("L must not need numpy")


def test_construction():
    assert L().items == [] and L(None).items == []
    assert L(1).items == [1] and L(1, 2, 3).items == [1, 2, 3]
    assert L("abc").items == ["abc"] and L(b"x").items == [b"x"] and L({"a": 1}).items == [{"a": 1}]
    assert L(range(3)).items == [0, 1, 2] and L(i for i in range(2)).items == [0, 1]
    lst = [1, 2]
    assert L(lst).items is lst  # shared, like fastcore
    assert L(lst, use_list=True).items is not lst
    t = L([1])
    assert L(t) is t and L(t, use_list=True) is not t
    assert L(1, match=3) == [1, 1, 1] and L([1, 2], match=[0, 0]) == [1, 2]
    with pytest.raises(ValueError, match="cannot match length 3"):
        L([1, 2], match=3)
    arr = FakeArray([1, 2])
    assert len(L(arr)) == 1 and L(arr)[0] is arr  # arrays stay one item


def test_repr():
    assert repr(L(1, 2)) == "[1, 2]"
    assert repr(L(range(7))) == "(#7) [0, 1, 2, 3, 4, 5, 6]"
    r = repr(L(range(1000)))
    assert r.startswith("(#1000) [0, 1,") and r.endswith(", 9, ...]") and len(r) < 60
    assert coll_repr(range(20), 3) == "(#20) [0, 1, 2, ...]"


def test_equality():
    assert L(1, 2) == [1, 2] and [1, 2] == L(1, 2) and L(1, 2) == (1, 2) and L(1, 2) == L(1, 2)
    assert L(1, 2) != [2, 1] and L(1, 2) != [1, 2, 3] and L(1, 2) != "12" and L() != {}
    assert L([[1, 2], [3]]) == [[1, 2], [3]] and L(1) != 1
    with pytest.raises(TypeError):
        hash(L(1))


def test_indexing_kinds():
    t = L(range(10, 20))
    assert t[0] == 10 and t[-1] == 19
    assert t[2:4] == [12, 13] and isinstance(t[2:4], L)
    assert t[[1, 3, 3]] == [11, 13, 13] and t[(0, -1)] == [10, 19]
    assert t[[True] * 3 + [False] * 7] == [10, 11, 12]
    assert t[range(2)] == [10, 11] and t[[]] == []
    assert t[FakeArray([0, 2])] == [10, 12]
    assert t[FakeArray([True, False] * 5, dtype="bool")] == [10, 12, 14, 16, 18]
    assert t[FakeArray(3)] == 13  # a rank-0 index array
    with pytest.raises(IndexError, match="mask of length 2"):
        t[[True, False]]
    with pytest.raises(TypeError, match="index lists must be all ints or all bools"):
        t[["a"]]
    with pytest.raises(TypeError, match="not supported"):
        t[1.5]


def test_setitem_delitem():
    t = L(range(5))
    t[0] = 9
    t[[1, 2]] = 7  # scalar broadcast
    t[[3, 4]] = [30, 40]
    assert t == [9, 7, 7, 30, 40]
    t[[True, False, False, False, True]] = 0
    assert t == [0, 7, 7, 30, 0]
    t[1:3] = [1, 2]
    assert t == [0, 1, 2, 30, 0]
    with pytest.raises(ValueError, match="3 values to 2 positions"):
        t[[0, 1]] = [1, 2, 3]
    del t[[0, 4]]
    assert t == [1, 2, 30]
    del t[0]
    assert t == [2, 30]


def test_operators_and_list_methods():
    t = L(1, 2)
    assert t + [3] == [1, 2, 3] and [0] + t == [0, 1, 2] and t + 3 == [1, 2, 3]
    assert t * 2 == [1, 2, 1, 2] and 2 * t == [1, 2, 1, 2]
    assert ~L(True, False) == [False, True]
    assert 2 in t and list(reversed(t)) == [2, 1] and len(t) == 2
    t.append(3)
    t.extend([4, 5])
    t.insert(0, 0)  # forwarded to the list
    assert t == [0, 1, 2, 3, 4, 5] and t.pop() == 5 and t.index(2) == 2 and t.count(1) == 1
    c = t.copy()
    c.append(9)
    assert 9 not in t
    assert "append" in dir(t)
    with pytest.raises(AttributeError, match="neither has its 'items'"):
        t.nope


def test_map_filter_and_friends():
    t = L(range(6))
    assert t.map(lambda o, k: o * k, 2) == [0, 2, 4, 6, 8, 10]
    assert t.map("#{}")[:2] == ["#0", "#1"]
    assert L("a", "b").map({"a": 1, "b": 2}) == [1, 2]
    assert L.map(str)([1, 2]) == ["1", "2"]  # curried on the class
    assert L.map(L(1, 2), str) == ["1", "2"]
    with pytest.raises(TypeError, match="neither callable"):
        t.map(3)
    assert t.filter(lambda o: o % 2) == [1, 3, 5] and t.filter(lambda o: o % 2, negate=True) == [0, 2, 4]
    assert L(0, 1, None, 2).filter() == [1, 2]
    assert t.argwhere(lambda o: o > 3) == [4, 5] and t.argfirst(lambda o: o > 3) == 4 and t.argfirst(lambda o: o > 9) is None
    assert t.first() == 0 and t.first(lambda o: o > 2) == 3 and L().first() is None
    assert t.last() == 5 and t.last(lambda o: o < 2) == 1
    assert L((1, 2), (3, 4)).starmap(operator.add) == [3, 7]


def test_itemgot_attrgot_sorted():
    t = L((1, "b", [0, 9]), (0, "a", [1, 8]))
    assert t.itemgot(0) == [1, 0] and t.itemgot(2, 1) == [9, 8]
    objs = L(SimpleNamespace(a=2, n="x"), SimpleNamespace(a=1, n="y"), {"a": 3})
    assert objs.attrgot("a") == [2, 1, 3] and objs.attrgot("zz", 0) == [0, 0, 0]
    assert t.sorted(0) == [t[1], t[0]] and t.sorted(1, reverse=True) == [t[0], t[1]]
    assert objs[:2].sorted("a").attrgot("n") == ["y", "x"]
    assert L(3, 1, 2).sorted() == [1, 2, 3] and L(-3, 1, 2).sorted(abs) == [1, 2, -3]
    assert L(3, 1, 2).sorted(cmp=lambda a, b: b - a) == [3, 2, 1]
    with pytest.raises(ValueError, match="key or cmp"):
        L(1).sorted(key=abs, cmp=lambda a, b: 0)


def test_unique_enumerate_zip_concat():
    assert L(3, 1, 3, 2, 1).unique() == [3, 1, 2] and L(3, 1, 3).unique(sort=True) == [1, 3]
    assert L([1], [1], [2]).unique() == [[1], [2]]  # unhashable items
    assert L("a", "b").val2idx() == {"a": 0, "b": 1}
    assert L("a", "b").enumerate() == [(0, "a"), (1, "b")] and L("a", "b").renumerate() == [("a", 0), ("b", 1)]
    assert L([1, 2], [3, 4]).zip() == [(1, 3), (2, 4)]
    assert L([1, 2, 3], [0]).zip(cycled=True) == [(1, 0), (2, 0), (3, 0)]
    assert L(1, 2).zipwith([3, 4]) == [(1, 3), (2, 4)]
    assert L([1, 2], [3, 4]).map_zip(operator.add) == [4, 6]
    assert L(1, 2).map_zipwith(operator.mul, [3, 4]) == [3, 8]
    assert L(1, 2).map_dict(str) == {1: "1", 2: "2"}
    assert L(1, 2, 3).map_first(lambda o: o * 2, lambda o: o > 2) == 4
    assert L([1], [2, 3], 4).concat() == [1, 2, 3, 4]
    assert L([1, [2, (3, L(4))]], 5).flatten() == [1, 2, 3, 4, 5]
    assert L(1, 2).flatmap(lambda o: [o, o]) == [1, 1, 2, 2]


def test_reductions_and_itertools():
    t = L(1, 2, 3, 4)
    assert t.sum() == 10 and L().sum() == 0 and t.product() == 24 and t.reduce(max) == 4
    assert t.reduce(operator.add, 10) == 20
    evens, odds = t.partition(lambda o: o % 2 == 0)
    assert evens == [2, 4] and odds == [1, 3] and isinstance(evens, L)
    g = L("aa", "b", "cc").groupby(len)
    assert g == {2: ["aa", "cc"], 1: ["b"]} and isinstance(g[2], L)
    assert L((1, "a"), (2, "b"), (1, "c")).groupby(0, 1) == {1: ["a", "c"], 2: ["b"]}
    assert L(SimpleNamespace(k=1), SimpleNamespace(k=1)).groupby("k")[1].attrgot("k") == [1, 1]
    assert t.takewhile(lambda o: o < 3) == [1, 2] and t.dropwhile(lambda o: o < 3) == [3, 4]
    assert t.accumulate() == [1, 3, 6, 10] and t.accumulate(operator.mul) == [1, 2, 6, 24]
    assert t.pairwise() == [(1, 2), (2, 3), (3, 4)]
    assert t.batched(3) == [(1, 2, 3), (4,)]
    with pytest.raises(ValueError, match="n=0"):
        t.batched(0)
    assert t.compress([1, 0, 1, 0]) == [1, 3]
    assert L(1, 2).permutations() == [(1, 2), (2, 1)] and L(1, 2, 3).combinations(2) == [(1, 2), (1, 3), (2, 3)]
    c = t.cycle()
    assert [next(c) for _ in range(6)] == [1, 2, 3, 4, 1, 2]
    ns = L(SimpleNamespace(), SimpleNamespace())
    ns.setattrs("x", 5)
    assert ns.attrgot("x") == [5, 5]


def test_shuffle_is_a_permutation_and_seedable():
    t = L(range(50))
    random.seed(0)
    a = t.shuffle()
    random.seed(0)
    b = t.shuffle()
    assert a == b and a != t and sorted(a) == list(t) and t == list(range(50))


def test_constructors():
    assert L.range(3) == [0, 1, 2] and L.range(1, 7, 2) == [1, 3, 5] and L.range([5, 6]) == [0, 1]
    assert L.split("a b  c") == ["a", "b", "c"] and L.split("a,b", ",") == ["a", "b"]
    assert L.splitlines("a\nb") == ["a", "b"]


def test_subclass_preserved_and_pickle():
    class MyL(L):
        pass

    m = MyL(1, 2, 3)
    assert type(m.map(str)) is MyL and type(m[1:]) is MyL and type(m.filter(bool)) is MyL
    t = pickle.loads(pickle.dumps(L(1, [2, 3])))
    assert t == [1, [2, 3]] and isinstance(t, L)


def test_helpers():
    assert mask2idxs([True, False, True]) == [0, 2] and mask2idxs([2, 0]) == [2, 0]
    assert mask2idxs(FakeArray([False, True], dtype="bool")) == [1]
    assert is_indexer(3) and not is_indexer(True) and not is_indexer([1]) and not is_indexer(slice(1))
    assert is_bool(True) and is_bool(FakeArray(True, dtype="bool")) and not is_bool(1)
    assert list(zip_cycle([1, 2, 3], "ab")) == [(1, "a"), (2, "b"), (3, "a")]
    c = cycle(None)
    assert next(c) is None


def test_dataframe_like_storage_with_use_list_none():
    class Frame:
        "Minimal pandas-like object: `iloc` row access, `__array__`, `len`."

        def __init__(self, rows):
            self.rows = rows
            self.iloc = _ILoc(self)

        def __len__(self):
            return len(self.rows)

        def __array__(self):
            raise AssertionError

    class _ILoc:
        def __init__(self, frame):
            self.frame = frame

        def __getitem__(self, i):
            if isinstance(i, slice):
                return Frame(self.frame.rows[i])
            return self.frame.rows[i]

    f = Frame(["r0", "r1", "r2"])
    t = L(f, use_list=None)
    assert t.items is f and t[1] == "r1" and t[[0, 2]] == ["r0", "r2"] and list(t) == ["r0", "r1", "r2"]
    assert t[1:].items.rows == ["r1", "r2"]


values = st.lists(st.integers(), max_size=20)


@given(values, st.data())
def test_int_and_slice_indexing_match_list(xs, data):
    t = L(list(xs))
    if xs:
        i = data.draw(st.integers(-len(xs), len(xs) - 1))
        assert t[i] == xs[i]
    s = slice(
        data.draw(st.none() | st.integers(-25, 25)),
        data.draw(st.none() | st.integers(-25, 25)),
        data.draw(st.none() | st.integers(1, 4) | st.integers(-4, -1)),
    )
    assert t[s] == xs[s]


@given(values, st.data())
def test_index_list_and_mask_match_list(xs, data):
    t = L(list(xs))
    if xs:
        idxs = data.draw(st.lists(st.integers(-len(xs), len(xs) - 1), max_size=10))
        assert t[idxs] == [xs[i] for i in idxs]
        assert t[FakeArray(idxs)] == [xs[i] for i in idxs]
    mask = data.draw(st.lists(st.booleans(), min_size=len(xs), max_size=len(xs)))
    assert t[mask] == [x for x, m in zip(xs, mask) if m]
    assert sorted(t[mask] + t[~L(mask)]) == sorted(xs)  # a mask and its negation partition the items


@given(values, st.data())
def test_setitem_index_list_matches_loop(xs, data):
    if not xs:
        return
    t, ref = L(list(xs)), list(xs)
    idxs = data.draw(st.lists(st.integers(0, len(xs) - 1), max_size=5, unique=True))
    vals = data.draw(st.lists(st.integers(), min_size=len(idxs), max_size=len(idxs)))
    t[idxs] = vals
    for i, v in zip(idxs, vals):
        ref[i] = v
    assert t == ref


@given(values)
def test_functional_methods_match_builtins(xs):
    t = L(list(xs))
    assert t.map(abs) == [abs(x) for x in xs]
    assert t.filter(lambda x: x > 0) == [x for x in xs if x > 0]
    assert t.sum() == sum(xs) and t.sorted() == sorted(xs) and t.unique() == list(dict.fromkeys(xs))
    assert t.enumerate() == list(enumerate(xs)) and len(t) == len(xs)
    assert (t == xs) and not (t != xs)
