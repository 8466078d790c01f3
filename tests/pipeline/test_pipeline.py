"""Pipeline: order, split_idx, setup in order, decode/show, add/remove, attribute access, pickling, map_items."""

import copy
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tiers.dispatch import L
from tiers.pipeline import (
    Category,
    ItemTransform,
    Pipeline,
    Transform,
    compose_tfms,
    gather_attrs,
    mk_transform,
)


class AddOne(Transform):
    def encodes(self, x: int):
        return x + 1

    def decodes(self, x: int):
        return x - 1


class Double(Transform):
    order = 1

    def encodes(self, x: int):
        return x * 2

    def decodes(self, x: int):
        return x // 2


class Categorize(Transform):
    "Learns a vocabulary in setup; decodes to a showable Category."

    def setups(self, items):
        self.vocab = sorted({o for o in items if isinstance(o, str)})

    def encodes(self, x: str):
        return self.vocab.index(x)

    def decodes(self, x: int):
        return Category(self.vocab[x])


class Mean(Transform):
    "Records what setup saw, to check it sees the data as transformed by the Transforms before it."

    order = 10

    def setups(self, items):
        self.seen = items

    def encodes(self, x: float):
        return x


# -- composing


def test_sorted_by_order_stably_and_default_noop():
    a, b, c = AddOne(), Double(), AddOne()
    pipe = Pipeline([b, a, c])
    assert list(pipe.fs) == [a, c, b]
    assert pipe(1) == 6 and pipe.decode(6) == 1
    assert repr(pipe) == "Pipeline: AddOne -> AddOne -> Double"
    noop = Pipeline()
    assert noop((1, "a")) == (1, "a") and repr(noop) == "Pipeline: (empty)"


def test_functions_classes_and_nested_pipelines_are_accepted():
    pipe = Pipeline([AddOne, lambda x: x * 10, Pipeline([Double])])
    assert len(pipe.fs) == 3 and isinstance(pipe.fs, L)
    assert pipe(1) == 40
    assert Pipeline(AddOne())(1) == 2 and Pipeline(str.upper)("a") == "A"
    assert mk_transform(pipe) is pipe
    with pytest.raises(TypeError, match="neither a Transform nor callable"):
        Pipeline([3])


def test_elements_dispatch_separately_and_unmatched_pass():
    pipe = Pipeline([AddOne(), Transform(str.upper)])
    assert pipe((1, "a", 2.5, None)) == (2, "A", 2.5, None)


def test_split_idx_propagates_and_can_change():
    train_only = AddOne(split_idx=0)
    pipe = Pipeline([train_only, Double()], split_idx=0)
    assert pipe(1) == 4
    pipe.split_idx = 1
    assert pipe(1) == 2
    pipe.split_idx = None
    assert pipe(1) == 2
    train_only.split_idx = None  # a Transform's own split_idx changing is seen by the next call
    assert pipe(1) == 4


def test_item_transform_between_plain_ones():
    class Swap(ItemTransform):
        def encodes(self, x: tuple):
            return (x[1], x[0])

    pipe = Pipeline([AddOne(), Swap(), Double()])
    pipe.fs[1].order = 0
    for _ in range(2):
        assert pipe((1, "a")) == ("a", 4)


# -- setup


def test_setup_sees_list_items_as_earlier_transforms_make_them():
    class ToFloat(Transform):
        def encodes(self, x: int):
            return float(x)

    m = Mean()
    pipe = Pipeline([m, AddOne(), ToFloat()])
    pipe.setup([1, 2])
    assert m.seen == [2.0, 3.0]  # AddOne, then ToFloat ran before Mean's setup
    m2 = Mean()
    Pipeline([m2, AddOne()]).setup(L([1, 2]))
    assert isinstance(m2.seen, L) and list(m2.seen) == [2, 3]


def test_setup_order_lets_later_transforms_use_earlier_state():
    cat = Categorize()
    m = Mean()
    pipe = Pipeline([cat, m])
    pipe.setup(["b", "a", "b"])
    assert cat.vocab == ["a", "b"] and m.seen == [1, 0, 1]
    assert pipe(("b", 2.0)) == (1, 2.0)


def test_setup_passes_other_objects_as_they_are():
    class Source:
        "Not a list, a batch or a view of this Pipeline: no way to know how the Transforms apply to it."

        data = [1, 2]

    m = Mean()
    Pipeline([m, Transform(lambda x: x * 2)]).setup(src := Source())
    assert m.seen is src


def test_setup_with_an_object_that_applies_the_pipeline_itself():
    class Lazy:
        "Like a TfmdLists: indexing applies the Pipeline it holds, as it stands at that moment."

        def __init__(self, items, tfms):
            self.items, self.tfms = items, Pipeline(tfms)

        def __getitem__(self, i):
            return self.tfms(self.items[i])

        def __len__(self):
            return len(self.items)

    class Record(Transform):
        order = 5

        def setups(self, items):
            self.seen = [items[i] for i in range(len(items))]
            self.n_tfms = len(items.tfms.fs)

    rec = Record()
    lazy = Lazy([1, 2], [AddOne(), rec, Double(), Transform(lambda x: x * 100, order=9)])
    lazy.tfms.setup(lazy)
    assert rec.seen == [4, 6] and rec.n_tfms == 2  # only AddOne and Double were in place while Record set up
    assert len(lazy.tfms.fs) == 4 and lazy[0] == 400


def test_add_sets_up_in_place_and_remove():
    pipe = Pipeline([AddOne()])
    m = Mean()
    pipe.add(m, items=[1, 2])
    assert m.seen == [2, 3] and pipe.fs[-1] is m
    first = Transform(lambda x: x, order=-1)
    pipe.add([first])
    assert pipe.fs[0] is first
    pipe.remove(first)
    assert first not in pipe.fs
    pipe.remove(AddOne)
    assert list(pipe.fs) == [m]
    with pytest.raises(ValueError, match="not in Pipeline"):
        pipe.remove(AddOne)


# -- decode and show


def test_decode_full_and_partial():
    cat = Categorize()
    pipe = Pipeline([cat, Double()])
    pipe.setup(["a", "b"])
    enc = pipe(("b", 1.5))
    assert enc == (2, 1.5)
    assert pipe.decode(enc) == (Category("b"), 1.5)
    # partial decode stops when every element can show itself: never here (1.5 is a plain float)
    assert pipe.decode(enc, full=False) == (Category("b"), 1.5)
    assert pipe.decode(2, full=False) == "b" and type(pipe.decode(2, full=False)) is Category


def test_partial_decode_stops_at_showable_stage():
    class Show(int):
        def show(self, ctx=None, **kw):
            return "shown"

    class ToShow(Transform):
        def encodes(self, x: Show):
            return int(x) * 10

        def decodes(self, x: int):
            return Show(x // 10)

    pipe = Pipeline([ToShow(), AddOne()])
    assert pipe(Show(1)) == 11
    assert type(pipe.decode(11, full=False)) is Show
    # once showable, later (earlier-stage) decodes are not run
    assert pipe.decode(Show(5), full=False) == 5


def test_show_decodes_then_shows_each_element(capsys):
    cat = Categorize()
    pipe = Pipeline([cat])
    pipe.setup(["cat", "dog"])
    pipe.show((1, 0))
    assert capsys.readouterr().out.split() == ["dog", "cat"]


# -- access


def test_getitem_and_attribute_access():
    cat = Categorize()
    pipe = Pipeline([cat, AddOne(), AddOne()])
    pipe.setup(["a"])
    assert pipe[0] is cat and isinstance(pipe[1:], L) and len(pipe[1:]) == 2
    assert pipe.categorize is cat
    assert isinstance(pipe.add_one, L) and len(pipe.add_one) == 2
    assert pipe.vocab == ["a"]  # forwarded to the one Transform that has it
    assert "vocab" in dir(pipe) and "categorize" in dir(pipe)
    with pytest.raises(AttributeError, match="none of its 3 Transforms has it"):
        pipe.nothing_has_this
    with pytest.raises(AttributeError):
        pipe._private


def test_settings_of_every_transform_are_not_gathered():
    "Bug: `pipe.order` gave `[0, 1]` (one per Transform), which nested once per Pipeline up to `dls.order`."
    pipe = Pipeline([AddOne(), Double()])
    for k in ("order", "name", "train_setup", "input_types", "encodes"):
        with pytest.raises(AttributeError, match=f"{k!r}: it is a setting each Transform has"):
            getattr(pipe, k)
    assert not hasattr(pipe, "order") and "order" not in dir(pipe)
    assert pipe.split_idx is None and pipe.fs[1].order == 1  # the Pipeline's own, and one Transform's


def test_gathering_across_pipelines_raises_nothing_inside():
    "A part that lacks the attribute is skipped without an exception: `dls.vocab` stays cheap (~1 us per exception)."

    class Strict(Pipeline):
        def __getattr__(self, k):
            raise AssertionError(f"{k!r} was looked up through an exception")

    class H:
        def __init__(self, *fs):
            self.fs = fs

    cat = Categorize()
    cat.setup(["b", "a"])
    assert gather_attrs(H(Strict([AddOne()]), Strict([cat, Double()])), "vocab", "fs") == ["a", "b"]
    assert gather_attrs(H(Strict([AddOne()]), Strict([cat])), "categorize", "fs") is cat


def test_gather_counts_a_part_whose_property_raises_attribute_error_as_a_miss():
    class Lazy:
        @property
        def vocab(self):
            raise AttributeError("not set up yet")

        def __getattr__(self, k):
            raise AttributeError(k)

    class H:
        def __init__(self, *fs):
            self.fs = fs

    cat = Categorize()
    cat.setup(["a"])
    assert gather_attrs(H(Lazy(), cat), "vocab", "fs") == ["a"]
    with pytest.raises(AttributeError, match="none of its fs"):
        gather_attrs(H(Lazy()), "vocab", "fs")


def test_gather_attrs_several_values():
    class H:
        def __init__(self, *fs):
            self.fs = fs

    a, b = AddOne(), AddOne()
    a.c, b.c = 1, 2
    assert gather_attrs(H(a, b), "c", "fs") == [1, 2]
    assert gather_attrs(H(a, AddOne()), "c", "fs") == 1


# -- pickling


def test_pickle_and_deepcopy_keep_setup_state():
    pipe = Pipeline([Categorize(), Double()], split_idx=1)
    pipe.setup(["x", "y"])
    assert pipe(("y", 2.5)) == (2, 2.5)
    for clone in (pickle.loads(pickle.dumps(pipe)), copy.deepcopy(pipe)):
        assert clone.vocab == ["x", "y"] and clone.split_idx == 1
        assert clone(("y", 2.5)) == (2, 2.5) and clone.decode((2, 2.5)) == ("y", 2.5)


# -- changes seen by the next call


def test_functions_added_after_the_first_call_are_seen():
    class Late(Transform):
        def encodes(self, x: int):
            return x + 1

    t = Late()
    pipe = Pipeline([t])
    assert pipe(("a", 1)) == pipe(("a", 1)) == ("a", 2)

    @Late
    def encodes(self, x: str):
        return x + "!"

    assert pipe(("a", 1)) == ("a!", 2)

    @t.encodes
    def _(x: float):
        return -x

    assert pipe((1.0, 1)) == (-1.0, 2)


def test_a_transforms_split_idx_set_after_the_first_call_is_seen():
    t = AddOne()
    pipe = Pipeline([t], split_idx=1)
    assert pipe(1) == pipe(1) == 2 and pipe.map_items([1, 2]) == [2, 3]
    t.split_idx = 0  # training only now: the validation Pipeline skips it from the next call on
    assert pipe(1) == 1 and pipe.map_items([1, 2]) == [1, 2]
    pipe.split_idx = 0
    assert pipe(1) == 2 and pipe.map_items([1, 2]) == [2, 3]


def test_a_transform_with_its_own_call_is_called_even_on_a_split_it_skips():
    "A random augmentation draws its parameters in `__call__`, even where it then skips: the Pipeline keeps that."

    class Draw(Transform):
        split_idx = 0

        def __init__(self):
            self.calls = 0

        def __call__(self, x, split_idx=None, **kwargs):
            self.calls += 1
            return super().__call__(x, split_idx=split_idx, **kwargs)

        def encodes(self, x: int):
            return x + 100

    d = Draw()
    valid, train = Pipeline([d, AddOne()], split_idx=1), Pipeline([d, AddOne()], split_idx=0)
    assert valid(1) == 2 and valid.map_items([1, 2]) == [2, 3] and d.calls == 3
    assert train(1) == 102 and train.map_items([1]) == [102] and d.calls == 5


def test_in_place_changes_to_fs_are_seen():
    pipe = Pipeline([AddOne()])
    assert pipe(1) == pipe(1) == 2
    pipe.fs.append(Double())
    assert pipe(1) == 4
    pipe.fs = pipe.fs[1:]
    assert pipe(1) == 2
    pipe.fs.insert(0, AddOne())
    assert pipe(1) == 4
    pipe.fs[1] = AddOne()
    assert pipe(1) == 3
    del pipe.fs[0]
    assert pipe(1) == 2
    pipe.fs.clear()
    assert pipe(1) == 1
    pipe.fs += [Double()]
    assert pipe(1) == 2 and isinstance(pipe.fs, L)
    assert type(pickle.loads(pickle.dumps(pipe.fs))) is L


def test_a_result_type_that_changes_between_items():
    class Maybe(Transform):
        def encodes(self, x: int):
            return x if x > 0 else str(x)

    class After(Transform):
        def encodes(self, x: int):
            return x * 10

        def encodes(self, x: str):  # noqa: F811
            return x + "s"

    pipe = Pipeline([Maybe(), After()])
    assert pipe((1, 2)) == pipe((1, 2)) == (10, 20)  # recorded: int -> int
    assert pipe((1, -2)) == (10, "-2s")  # element 1 comes back a str: finished the ordinary way
    assert pipe((-1, 2)) == ("-1s", 20)
    assert pipe((3, 4)) == (30, 40)


def test_one_object_becoming_a_tuple():
    split = Transform(lambda x: (x, x) if isinstance(x, int) else x)
    pipe = Pipeline([split, AddOne()])
    for _ in range(3):
        assert pipe(1) == (2, 2)


def test_errors_inside_a_pipeline_name_the_transform():
    class Inv(Transform):
        def encodes(self, x: int):
            return 10 // x

    pipe = Pipeline([AddOne(), Inv()])
    assert pipe((1, 4)) == pipe((1, 4)) == (5, 2)
    with pytest.raises(ZeroDivisionError, match=r"Inv.encodes raised ZeroDivisionError on element 0 of a 2-tuple"):
        pipe((-1, 4))


# -- calls replay what the first call of each input shape recorded (no generated code)


def test_functions_run_in_the_same_order_on_every_call():
    "Transform by Transform, element by element (a function with side effects sees the same order each time)."
    log = []

    class A(Transform):
        def encodes(self, x: int):
            log.append(("A", x))
            return x + 1

    class B(Transform):
        def encodes(self, x: int):
            log.append(("B", x))
            return x * 10

    pipe = Pipeline([A(), B()])
    order = [("A", 1), ("A", 2), ("B", 2), ("B", 3)]
    for _ in range(3):
        log.clear()
        assert pipe((1, 2)) == (20, 30) and log == order
    log.clear()
    assert pipe.map_items([(1, 2), (1, 2)]) == [(20, 30)] * 2 and log == order * 2


class Name(str):
    pass


def test_results_are_retained_and_cast_on_every_call():
    class Shout(Transform):
        def encodes(self, x: str):  # returns a plain str: the input's subclass is given back
            return x.upper()

    class Tag(Transform):
        def encodes(self, x: int) -> Name:  # cast by the return annotation
            return str(x)

    pipe = Pipeline([Shout(), Tag()])
    for out in [pipe((Name("a"), 1)) for _ in range(3)] + pipe.map_items([(Name("a"), 1)] * 2):
        assert out == ("A", "1") and type(out[0]) is Name and type(out[1]) is Name
    for out in [pipe(Name("b")) for _ in range(3)]:
        assert out == "B" and type(out) is Name


def test_changes_to_a_transform_class_after_the_first_call_are_seen():
    class Inc(Transform):
        def encodes(self, x: int):
            return x + 1

    t = Inc()
    pipe = Pipeline([t], split_idx=1)
    assert pipe(1) == pipe(1) == 2
    Inc.split_idx = 0  # on the class: training only
    assert pipe(1) == 1 and pipe.map_items([1]) == [1]
    t.split_idx = 1
    assert pipe(1) == 2
    del t.split_idx  # back to the class's
    assert pipe(1) == 1
    Inc.split_idx = None

    calls = []

    def own_call(self, x, split_idx=None, **kwargs):
        calls.append(x)
        return Transform.__call__(self, x, split_idx=split_idx, **kwargs)

    Inc.__call__ = own_call  # a __call__ of its own, patched in: called on every item from now on
    assert pipe(1) == 2 and pipe.map_items([5]) == [6] and calls == [1, 5]


def test_a_transform_with_its_own_per_element_method_is_honoured():
    seen = []

    class Spy(Transform):
        def _one(self, m, x, kwargs, i=None, whole=None):
            seen.append(x)
            return super()._one(m, x, kwargs, i, whole)

        def encodes(self, x: int):
            return -x

    pipe = Pipeline([Spy(), AddOne()])
    assert pipe(3) == pipe(3) == -2 and seen == [3, 3]


def test_input_shapes_beyond_the_number_planned_run_the_ordinary_way():
    pipe = Pipeline([AddOne(), Transform(str.upper), Double()])
    kinds = [1, "a", 2.5, None]
    items = [tuple(kinds[(i + j) % 4] for j in range(n)) for n in range(1, 30) for i in range(4)]
    assert len({tuple(map(type, o)) for o in items}) > 64
    for _ in range(2):
        assert [pipe(o) for o in items] == [compose_tfms(o, pipe.fs) for o in items] == pipe.map_items(items)


def test_tuple_subclasses_keep_their_type_on_every_call():
    from tiers.pipeline import TitledTuple

    pipe = Pipeline([AddOne(), Double()])
    for out in [pipe(TitledTuple((1, 2))) for _ in range(3)] + pipe.map_items([TitledTuple((1, 2))] * 2):
        assert out == (4, 6) and type(out) is TitledTuple


def test_a_list_of_transforms_replaced_under_the_same_l_is_seen():
    pipe = Pipeline([AddOne()])
    assert pipe(1) == pipe(1) == 2
    pipe.fs.items = [Double()]
    assert pipe(1) == 2 and pipe(3) == 6


def test_the_route_is_not_pickled_and_clones_work():
    pipe = Pipeline([AddOne(), Double()])
    assert pipe((1, "a")) == (4, "a")
    assert "_route" in vars(pipe) and "_route" not in pipe.__getstate__()
    for clone in (pickle.loads(pickle.dumps(pipe)), copy.deepcopy(pipe), copy.copy(pipe)):
        assert clone((1, "a")) == (4, "a") and clone.map_items([2, (3,)]) == [6, (8,)]


def test_errors_name_the_item_on_every_call():
    class Inv(Transform):
        def encodes(self, x: int):
            return 10 // x

    pipe = Pipeline([AddOne(), Inv()])
    for _ in range(3):
        assert pipe(1) == 5
        with pytest.raises(ZeroDivisionError) as ei:
            pipe(-1)
        assert ei.value.__notes__ == ["Inv.encodes raised ZeroDivisionError on the item (not a tuple), of type int"]
        with pytest.raises(ZeroDivisionError) as ei:
            pipe.map_items([(1, 2), (1, -1)])
        assert ei.value.__notes__ == ["Inv.encodes raised ZeroDivisionError on element 1 of a 2-tuple, of type int"]


def test_threads_calling_one_pipeline_with_different_shapes():
    import sys
    import threading

    class Len(Transform):
        def encodes(self, x: str):
            return len(x)

    pipe = Pipeline([Len(), AddOne()])
    shapes = [(("ab", 1), (3, 2)), ((1, "abc"), (2, 4)), (("a", "b"), (2, 2)), ("abcd", 5), (7, 8)]
    bad = []

    def work(k):
        for n in range(3000):
            o, want = shapes[(n + k) % len(shapes)]
            got = pipe(o) if n % 2 else pipe.map_items([o])[0]
            if got != want:
                bad.append((o, got))

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, to meet a race if there is one
    try:
        threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    finally:
        sys.setswitchinterval(old)
    assert not bad, bad[:3]


# -- property tests

_scalars = st.one_of(st.integers(-50, 50), st.text(max_size=3), st.floats(allow_nan=False, width=32))
_items = st.one_of(
    _scalars,
    st.tuples(_scalars, st.integers()),
    st.tuples(_scalars),
    st.tuples(_scalars, _scalars, st.integers()),
)


class Shift(Transform):
    def __init__(self, k=3):
        self.k = k

    def encodes(self, x: int):
        return x + self.k

    def decodes(self, x: int):
        return x - self.k

    def encodes(self, x: str):  # noqa: F811
        return x[::-1]

    def decodes(self, x: str):  # noqa: F811
        return x[::-1]


class Neg(Transform):
    order = 2

    def encodes(self, x: float):
        return -x

    def decodes(self, x: float):
        return -x


@settings(max_examples=100, deadline=None)
@given(st.lists(_items, min_size=1, max_size=5))
def test_decode_inverts_encode(xs):
    pipe = Pipeline([Neg(), Shift(2), Shift(5)])
    for x in xs:
        assert pipe.decode(pipe(x)) == x


class Wobbly(Transform):
    "Return type depends on the value: int -> int or str, str -> int or str."

    def encodes(self, x: int):
        return x * 3 if x % 2 else str(x)

    def encodes(self, x: str):  # noqa: F811
        return len(x) if len(x) % 2 else x + "x"


@settings(max_examples=100, deadline=None)
@given(st.lists(_items, min_size=1, max_size=8), st.sampled_from([None, 0, 1]))
def test_pipeline_matches_transform_by_transform(xs, split):
    tfms = [Wobbly(), Shift(1), Neg(), Wobbly(), AddOne(split_idx=0), Double(split_idx=1)]
    pipe = Pipeline(tfms, split_idx=split)
    for x in xs:
        assert pipe(x) == compose_tfms(x, pipe.fs, split_idx=split)
    assert pipe.map_items(xs) == [compose_tfms(x, pipe.fs, split_idx=split) for x in xs]


# ---- the loader's hot path: map_items, identity ---------------------------------------
class _Neg(Transform):
    def encodes(self, x: int):
        return -x


def test_map_items_equals_calling_on_each_item_including_new_shapes():
    p = Pipeline([_Neg(), Transform(str.upper)])
    items = [(1, "a"), (2, "b"), 3, "c", (4, "d", 5), (6, "e")]  # shapes switch mid-list
    for _ in range(2):
        assert p.map_items(items) == [p(o) for o in items] == [(-1, "A"), (-2, "B"), -3, "C", (-4, "D", -5), (-6, "E")]


def test_tuple_kinds_through_a_pipeline_match_transform_by_transform():
    "Plain tuples (mapped in place across Transforms), tuple subclasses (kept), namedtuples (one object), mixed with"
    "an ItemTransform and a Transform with its own __call__ between element-wise ones."
    from collections import namedtuple

    from tiers.pipeline import TitledTuple

    class Own(Transform):
        def __call__(self, x, split_idx=None, **kwargs):
            return super().__call__(x, split_idx=split_idx, **kwargs)

        def encodes(self, x: int):
            return x * 3

    P = namedtuple("P", "a b")
    swap = ItemTransform(enc=lambda o: (o[1], o[0]) if isinstance(o, tuple) and len(o) == 2 else o)
    pipe = Pipeline([AddOne(), swap, _Neg(), Own(), AddOne(), Double()])
    items = [(1, 2), TitledTuple((1, 2)), P(1, 2), 5, (1, "a", 2.0), ("a", 1)]
    expected = [compose_tfms(o, pipe.fs, split_idx=None) for o in items]
    assert [pipe(o) for o in items] == expected == pipe.map_items(items)
    assert [type(o) for o in pipe.map_items(items)] == [type(o) for o in expected]
    assert type(pipe(TitledTuple((1, 2)))) is TitledTuple and pipe(TitledTuple((1, 2))) == (-16, -10)
    assert expected[0] == (-16, -10)  # (2, 3) -> swapped (3, 2) -> (-3, -2) -> (-9, -6) -> (-8, -5) -> doubled
    assert pipe(P(1, 2)) == expected[2] == (-10, -4)  # a namedtuple is one object: AddOne leaves it, swap splits it


def test_map_items_with_an_item_transform():
    p = Pipeline([ItemTransform(enc=lambda o: (o[1], o[0])), _Neg()])
    assert p.map_items([(1, 2), (3, 4)]) == [(-2, -1), (-4, -3)]


def test_identity_says_whether_calling_changes_nothing():
    assert Pipeline().identity and Pipeline(None).identity and Pipeline([]).identity
    assert not Pipeline([_Neg()]).identity
    p = Pipeline()
    p.fs[0].encodes.add(lambda x: x * 2)  # the noop Transform gains a method: no longer an identity
    assert not p.identity


def test_map_items_when_a_result_type_changes_mid_list():
    class OddToStr(Transform):
        def encodes(self, x: int) -> None:
            return str(x) if x % 2 else x

    p = Pipeline([OddToStr(), _Neg()])
    items = [(2, 0), (3, 1), (4, 2), 5, 6]
    expected = [(-2, 0), ("3", "1"), (-4, -2), "5", -6]
    for _ in range(3):
        assert p.map_items(items) == expected == [p(o) for o in items]
        assert p.map_items(iter(items)) == expected  # any iterable
