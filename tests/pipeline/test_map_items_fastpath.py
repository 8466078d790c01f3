"""`Pipeline.map_items`'s fast path for the usual after-item Pipeline (one function, on the input of `(input,
target)` pairs or on single objects) gives what its general loop gives: the same results, types, calls in the same
order, errors and notes, split_idx gating; items that do not fit it (other shapes or types in the same batch, a
result of another type) are finished the ordinary way.

The general loop is what `map_items` runs on an iterable that is not a list (`iter(items)`), and what calling the
Pipeline on each item does (`pipe(o)`); `compose_tfms` is the Transform-by-Transform reference."""

from collections import namedtuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tiers.pipeline import Pipeline, TitledTuple, Transform, compose_tfms


class Logged(Transform):
    "Adds `k` to ints, recording each call in `log` (to compare which calls happen, in which order)."

    def __init__(self, log, k=10, **kwargs):
        super().__init__(**kwargs)
        self.log, self.k = log, k

    def encodes(self, x: int):
        self.log.append((self.k, x))
        return x + self.k


def _lone(pipe, pair=True):
    "The one-function plan `map_items` takes its fast path with (None: it takes the general loop)."
    run = pipe._current_route().run
    if run is None:  # no element-wise Transform runs under this split, or not only those
        return None
    return run.last2[3] if pair else run.last1[2]


def _same(got, want):
    assert got == want
    assert [type(o) for o in got] == [type(o) for o in want]
    for g, w in zip(got, want):
        if type(g) is tuple:
            assert [type(x) for x in g] == [type(x) for x in w]


def _three_ways(make, items):
    """`map_items` on the list (fast path), on an iterator (general loop), and calls one by one, each through a
    fresh Pipeline warmed up on the first item; returns their results, call logs and whether the fast path ran
    (read at once: building a Transform with a `split_idx` makes every Pipeline work out its route again)."""
    out = []
    for how in ("list", "iter", "call"):
        log: list = []
        pipe = make(log)
        pipe.map_items([items[0]] * 2)  # records the plan and makes it the last one used
        log.clear()
        fast = _lone(pipe, pair=type(items[0]) is tuple) is not None
        if how == "list":
            got = pipe.map_items(list(items))
        elif how == "iter":
            got = pipe.map_items(iter(items))
        else:
            got = [pipe(o) for o in items]
        out.append((got, log, fast))
    return out


def test_pairs_take_the_fast_path_with_the_same_results_and_calls():
    items = [(i, f"s{i}") for i in range(20)]
    (fast, flog, took), (gen, glog, _), (one, olog, _) = _three_ways(lambda log: Pipeline([Logged(log)]), items)
    assert took
    _same(fast, gen)
    _same(fast, one)
    assert fast == [(i + 10, f"s{i}") for i in range(20)]
    assert flog == glog == olog == [(10, i) for i in range(20)]


def test_single_objects_take_the_fast_path():
    items = list(range(7))
    (fast, flog, took), (gen, glog, _), _ = _three_ways(lambda log: Pipeline([Logged(log)]), items)
    assert took
    _same(fast, gen)
    assert fast == [i + 10 for i in range(7)] and flog == glog


def test_a_batch_with_other_shapes_and_types_matches_the_general_loop():
    P = namedtuple("P", "a b")
    items = [(1, "a"), (2, "b"), (3, 4), (5,), (6, "c", 7), [8, "d"], TitledTuple((9, "e")), P(10, "f"), 11, "g",
             (12.5, "h"), (13, "i")]
    (fast, flog, _), (gen, glog, _), (one, olog, _) = _three_ways(lambda log: Pipeline([Logged(log)]), items)
    _same(fast, gen)
    _same(fast, one)
    assert fast == [compose_tfms(o, [Logged([])]) for o in items]
    assert flog == glog == olog
    assert type(fast[6]) is TitledTuple and type(fast[7]) is P


def test_the_target_transformed_or_several_functions_take_the_general_loop():
    pipe = Pipeline([Transform(str.upper)])  # on element 1 of (int, str)
    pipe.map_items([(1, "a")] * 2)
    assert _lone(pipe) is None and pipe.map_items([(1, "a"), (2, "b")]) == [(1, "A"), (2, "B")]
    log: list = []
    two = Pipeline([Logged(log, 1), Logged(log, 2, order=1)])
    two.map_items([(1, 1)] * 2)
    assert _lone(two) is None


@pytest.mark.parametrize("split", [None, 0, 1])
def test_split_idx_gating_is_the_general_loops(split):
    def make(log):
        return Pipeline([Logged(log, 1, split_idx=0), Logged(log, 100, split_idx=1, order=1)], split_idx=split)

    items = [(i, "y") for i in range(5)]
    (fast, flog, took), (gen, glog, _), (one, olog, _) = _three_ways(make, items)
    _same(fast, gen)
    _same(fast, one)
    assert flog == glog == olog
    k = {None: 0, 0: 1, 1: 100}[split]  # with split None, both are skipped: nothing to call
    assert fast == [(i + k, "y") for i in range(5)]
    assert took == (split is not None)
    # a Transform's split_idx changed after the plan was recorded: the next batch sees it
    pipe = make([])
    pipe.map_items(items)
    pipe.fs[0].split_idx = {None: None, 0: 1, 1: 1}[split]  # runs now where it was skipped, or the reverse
    want = [compose_tfms(o, pipe.fs, split_idx=split) for o in items]
    assert pipe.map_items(items) == want == pipe.map_items(iter(items)) != [(i + k, "y") for i in range(5)]


def test_errors_name_the_item_and_stop_where_the_general_loop_stops():
    class Inv(Transform):
        def __init__(self, log):
            self.log = log

        def encodes(self, x: int):
            self.log.append(x)
            return 10 // x

    items = [(1, "a"), (2, "b"), (0, "c"), (5, "d")]
    for it in (list, iter):
        log: list = []
        pipe = Pipeline([Inv(log)])
        pipe.map_items([(1, "a")] * 2)
        log.clear()
        with pytest.raises(ZeroDivisionError) as ei:
            pipe.map_items(it(items))
        assert ei.value.__notes__ == ["Inv.encodes raised ZeroDivisionError on element 0 of a 2-tuple, of type int"]
        assert log == [1, 2, 0]  # the items after the failing one are not called
        pipe.map_items([5, 6])
        with pytest.raises(ZeroDivisionError) as ei:
            pipe.map_items(it([1, 0, 2]))
        assert ei.value.__notes__ == ["Inv.encodes raised ZeroDivisionError on the item (not a tuple), of type int"]


def test_a_stop_iteration_raised_by_a_transform_propagates_and_ends_nothing_early():
    class Next(Transform):
        def encodes(self, x: int):
            if x < 0:
                raise StopIteration(x)
            return x

    pipe = Pipeline([Next()])
    pipe.map_items([(1, 0)] * 2)
    with pytest.raises(StopIteration) as ei:
        pipe.map_items([(1, 0), (-3, 0), (2, 0)])
    assert ei.value.args == (-3,) and ei.value.__notes__[0].startswith("Next.encodes raised StopIteration on element 0")


def test_results_cast_by_the_return_annotation_and_results_of_another_type():
    class Cast(Transform):
        def encodes(self, x: int) -> TitledTuple:
            return (x, x)

    pipe = Pipeline([Cast()])
    items = [(1, "a"), (2, "b")]
    pipe.map_items(items)
    _same(pipe.map_items(items), pipe.map_items(iter(items)))
    assert [type(o[0]) for o in pipe.map_items(items)] == [TitledTuple, TitledTuple]

    class OddToStr(Transform):
        def __init__(self, log):
            self.log = log

        def encodes(self, x: int) -> None:
            self.log.append(("odd", x))
            return str(x) if x % 2 else x

    class Shout(Transform):  # matches only what OddToStr turns into text: the later step a surprise brings in
        order = 1

        def __init__(self, log):
            self.log = log

        def encodes(self, x: str):
            self.log.append(("shout", x))
            return x + "!"

    items = [(2, 0.5), (4, 0.5), (3, 0.5), (6, 0.5), 5, 8]
    (fast, flog, took), (gen, glog, _), (one, olog, _) = _three_ways(
        lambda log: Pipeline([OddToStr(log), Shout(log)]), items)
    _same(fast, gen)
    _same(fast, one)
    assert took and fast == [(2, 0.5), (4, 0.5), ("3!", 0.5), (6, 0.5), "5!", 8]
    assert flog == glog == olog  # the surprise's later calls come right after its own, before the next item


def test_typed_tensors_keep_their_type_and_metadata():
    pytest.importorskip("tiers.tensors", reason="tiers-tensors is not installed (tiers-pipeline works without it)")
    import torch

    from tiers.tensors import TensorImage

    class Flip(Transform):
        def encodes(self, x: TensorImage):
            return x.flip(-1)

    items = [(TensorImage(torch.arange(6.0).view(2, 3) + i, tag=i), i) for i in range(5)]
    pipe = Pipeline([Flip()])
    pipe.map_items(items[:1] * 2)
    assert _lone(pipe) is not None
    fast, gen = pipe.map_items(items), pipe.map_items(iter(items))
    for (x, y), (gx, gy), (ox, oy) in zip(fast, gen, items):
        assert type(x) is type(gx) is TensorImage and x.tag == gx.tag == ox.tag and y == gy == oy
        assert torch.equal(x.as_subclass(torch.Tensor), ox.flip(-1).as_subclass(torch.Tensor))
        assert torch.equal(x.as_subclass(torch.Tensor), gx.as_subclass(torch.Tensor))


class Wobbly(Transform):
    "Return type depends on the value: int -> int or str, str -> int or str."

    def encodes(self, x: int):
        return x * 3 if x % 2 else str(x)

    def encodes(self, x: str):  # noqa: F811
        return len(x) if len(x) % 2 else x + "x"


_elems = st.one_of(st.integers(-20, 20), st.text(max_size=3), st.floats(allow_nan=False, width=32))
_items = st.one_of(_elems, st.tuples(_elems, _elems), st.tuples(_elems), st.tuples(_elems, _elems, _elems))


@settings(max_examples=100, deadline=None)
@given(st.lists(_items, min_size=1, max_size=10), st.lists(_items, min_size=1, max_size=10),
       st.sampled_from([None, 0, 1]))
def test_property_fast_path_equals_the_general_loop(warm, items, split):
    "Whatever plan the last call left (`warm`), a batch gives what the general loop and `compose_tfms` give."
    pipe = Pipeline([Wobbly(split_idx=0), Wobbly(split_idx=1, order=1)], split_idx=split)
    ref = Pipeline([Wobbly(split_idx=0), Wobbly(split_idx=1, order=1)], split_idx=split)
    pipe.map_items(warm)
    ref.map_items(warm)
    want = [compose_tfms(o, pipe.fs, split_idx=split) for o in items]
    _same(pipe.map_items(items), want)
    _same(ref.map_items(iter(items)), want)


# ---- map_pairs: map_items's results as two columns when every result is a plain pair ---------------------------------
def _pairs_vs_items(make, items, warm=None):
    """`map_pairs(items)` and `map_items(items)` on two fresh Pipelines warmed up alike: their results (columns made
    pairs again) and their call logs."""
    out = []
    for how in ("pairs", "items"):
        log: list = []
        pipe = make(log)
        pipe.map_items(list(warm if warm is not None else [items[0]] * 2))
        log.clear()
        got = pipe.map_pairs(list(items)) if how == "pairs" else pipe.map_items(list(items))
        out.append((got, log))
    return out


def test_map_pairs_gives_columns_with_the_same_calls():
    items = [(i, f"s{i}") for i in range(20)]
    (cols, clog), (want, wlog) = _pairs_vs_items(lambda log: Pipeline([Logged(log)]), items)
    assert type(cols) is tuple and [type(c) for c in cols] == [list, list]
    _same(list(zip(*cols)), want)
    assert clog == wlog == [(10, i) for i in range(20)]


def test_map_pairs_of_other_shapes_gives_what_map_items_gives():
    P = namedtuple("P", "a b")
    cases = [
        [(1, "a"), (2, "b"), (3, 4), (5, "c")],  # a pair of other types: finished the general way, still a pair
        [(1, "a"), (2, "b"), (5,), (6, "c")],  # not a pair: a list from there on
        [(1, "a"), (2, "b", 3), (4, "d")],
        [(1, "a"), [8, "d"], (4, "d")],
        [(1, "a"), P(10, "f"), (4, "d")],  # a namedtuple result is not a plain pair
        [(1, "a"), TitledTuple((9, "e")), (4, "d")],
        [(1, "a"), 11, (4, "d")],
        [(1, "a"), (12.5, "h"), (13, "i")],
    ]
    for items in cases:
        (got, glog), (want, wlog) = _pairs_vs_items(lambda log: Pipeline([Logged(log)]), items)
        if type(got) is tuple:
            got = list(zip(*got))
            assert all(type(o) is tuple and len(o) == 2 for o in want)
        _same(got, want)
        assert glog == wlog


def test_map_pairs_without_the_fast_path_is_map_items():
    pipe = Pipeline([Transform(str.upper)])  # on element 1: not the one-function-on-the-input plan
    pipe.map_items([(1, "a")] * 2)
    assert pipe.map_pairs([(1, "a"), (2, "b")]) == [(1, "A"), (2, "B")]
    log: list = []
    fresh = Pipeline([Logged(log)])  # no plan used yet: the first batch gives a list
    assert fresh.map_pairs([(1, "a"), (2, "b")]) == [(11, "a"), (12, "b")]
    assert fresh.map_pairs([]) == [] and fresh.map_pairs([5, 6]) == [15, 16]


def test_map_pairs_results_cast_or_of_another_type():
    class OddToStr(Transform):
        def __init__(self, log):
            self.log = log

        def encodes(self, x: int) -> None:
            self.log.append(("odd", x))
            return str(x) if x % 2 else x

    class Shout(Transform):
        order = 1

        def __init__(self, log):
            self.log = log

        def encodes(self, x: str):
            self.log.append(("shout", x))
            return x + "!"

    items = [(2, 0.5), (4, 0.5), (3, 0.5), (6, 0.5), (7, 0.5)]
    (got, glog), (want, wlog) = _pairs_vs_items(lambda log: Pipeline([OddToStr(log), Shout(log)]), items)
    assert type(got) is tuple
    _same(list(zip(*got)), want)
    assert want == [(2, 0.5), (4, 0.5), ("3!", 0.5), (6, 0.5), ("7!", 0.5)] and glog == wlog

    class Cast(Transform):
        def encodes(self, x: int) -> TitledTuple:
            return (x, x)

    (got, _), (want, _) = _pairs_vs_items(lambda log: Pipeline([Cast()]), [(1, "a"), (2, "b")])
    _same(list(zip(*got)), want)
    assert [type(o[0]) for o in want] == [TitledTuple, TitledTuple]


def test_map_pairs_errors_are_map_items_errors():
    class Inv(Transform):
        def __init__(self, log):
            self.log = log

        def encodes(self, x: int):
            self.log.append(x)
            return 10 // x

    log: list = []
    pipe = Pipeline([Inv(log)])
    pipe.map_items([(1, "a")] * 2)
    log.clear()
    with pytest.raises(ZeroDivisionError) as ei:
        pipe.map_pairs([(1, "a"), (2, "b"), (0, "c"), (5, "d")])
    assert ei.value.__notes__ == ["Inv.encodes raised ZeroDivisionError on element 0 of a 2-tuple, of type int"]
    assert log == [1, 2, 0]
    with pytest.raises(ZeroDivisionError):  # in the items after a result that is not a pair
        pipe.map_pairs([(1, "a"), (2, "b", 3), (0, "c")])


def test_map_pairs_keeps_typed_tensors_and_their_metadata():
    pytest.importorskip("tiers.tensors", reason="tiers-tensors is not installed (tiers-pipeline works without it)")
    import torch

    from tiers.tensors import TensorImage

    class Flip(Transform):
        def encodes(self, x: TensorImage):
            return x.flip(-1)

    items = [(TensorImage(torch.arange(6.0).view(2, 3) + i, tag=i), i) for i in range(5)]
    pipe = Pipeline([Flip()])
    pipe.map_items(items[:1] * 2)
    xs, ys = pipe.map_pairs(items)
    for x, y, (ox, oy) in zip(xs, ys, items, strict=True):
        assert type(x) is TensorImage and x.tag == ox.tag and y == oy
        assert torch.equal(x.as_subclass(torch.Tensor), ox.flip(-1).as_subclass(torch.Tensor))


@settings(max_examples=100, deadline=None)
@given(st.lists(_items, min_size=1, max_size=10), st.lists(_items, min_size=1, max_size=10),
       st.sampled_from([None, 0, 1]))
def test_property_map_pairs_equals_map_items(warm, items, split):
    def make(log):
        return Pipeline([Wobbly(split_idx=0), Wobbly(split_idx=1, order=1)], split_idx=split)

    (got, _), (want, _) = _pairs_vs_items(make, items, warm=warm)
    if type(got) is tuple:
        assert all(type(o) is tuple and len(o) == 2 for o in want)
        got = list(zip(*got))
    _same(got, want)
