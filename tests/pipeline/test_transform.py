"""Transform: definition styles, per-element dispatch, type retention, split_idx, setup, variants, errors, pickling."""

import copy
import pickle
from collections import namedtuple
from functools import partial
from types import SimpleNamespace

import pytest

from tiers.dispatch import noop, risinstance, store_attr, using_attr
from tiers.pipeline import (
    DisplayedTransform,
    InplaceTransform,
    ItemTransform,
    Pipeline,
    TitledTuple,
    Transform,
    compose_tfms,
)


class Name(str):
    "A str subclass, to check that results keep the input's subclass."


class AddOne(Transform):
    def encodes(self, x: int):
        return x + 1

    def decodes(self, x: int):
        return x - 1


class Vocab(Transform):
    def setups(self, items):
        self.vocab = sorted(set(items))
        self.o2i = {v: i for i, v in enumerate(self.vocab)}

    def encodes(self, x: str):
        return self.o2i[x]

    def decodes(self, x: int):
        return self.vocab[x]


# -- definition styles


def test_several_encodes_in_class_body_dispatch_on_annotation():
    class T(Transform):
        def encodes(self, x: int):
            return "int"

        def encodes(self, x: str):  # noqa: F811
            return "str"

        def encodes(self, x: object):  # noqa: F811
            return "object"

    t = T()
    assert (t(1), t("a"), t(1.5)) == ("int", "str", "object")
    assert repr(t) == "T(enc:3,dec:0)"


def test_unannotated_ranks_below_every_annotation_including_object():
    class T(Transform):
        def encodes(self, x: int):
            return "int"

        def encodes(self, x):  # noqa: F811
            return "any"

    t = T()
    assert (t(1), t("s")) == ("int", "any")


def test_functions_to_constructor_and_plain_function():
    t = Transform(enc=lambda x: x * 2, dec=lambda x: x // 2)
    assert t(3) == 6 and t.decode(6) == 3
    def neg(x: float):
        return -x

    t2 = Transform(neg)
    assert t2(2.0) == -2.0 and t2(3) == 3  # int is not a float: passes through
    assert t2.name == "neg" and t2.input_types == (float,)
    t3 = Transform(enc=[lambda x: "other", neg])  # several functions: dispatch among them
    assert (t3(1.0), t3("a")) == (-1.0, "other")


def test_constructor_takes_callables_that_are_not_functions():
    assert Transform(str.upper)(("a", 1)) == ("A", 1)  # a method descriptor applies to its class only
    assert Transform(partial(pow, exp=2))(3) == 9
    assert Transform(abs)(-3) == 3
    assert Transform(int)(("3", 4.5)) == (3, 4)  # no signature to read: applies to anything
    assert Transform(str.strip).input_types == (str,)


def test_decorate_function_with_class_extends_class_and_existing_subclasses():
    class Base(Transform):
        def encodes(self, x: int):
            return x + 1

    class Sub(Base):
        pass

    sub = Sub()  # created before the parent gains a method
    assert sub("a") == "a"

    @Base
    def encodes(self, x: str):
        return x + "!"

    assert sub("a") == "a!"  # parent dispatchers are linked live
    assert Base()("b") == "b!"
    assert callable(encodes) and encodes.__name__ == "encodes"  # the decorator hands back the function


def test_class_attribute_assignment_extends_class():
    class T(Transform):
        pass

    def decodes(self, x: int):
        return -x

    T.decodes = decodes
    assert T().decode(2) == -2


def test_decorator_on_instance_changes_that_instance_only():
    a, b = AddOne(), AddOne()

    @a.encodes
    def _(x: str):
        return x.upper()

    @a.decodes
    def _(self, x: str):  # a function written with `self` receives the Transform
        assert self is a
        return x.lower()

    assert a(("s", 1)) == ("S", 2)  # the class's int method still applies
    assert a.decode("S") == "s"
    assert b("s") == "s"


def test_instance_method_setter_replaces_instance_functions():
    t = AddOne()
    t.encodes = lambda x: "replaced"
    assert t(1) == 2  # class's int method still more specific than the unannotated one
    assert t("a") == "replaced"


def test_bound_method_applies_one_method_to_one_object():
    t = AddOne()
    assert t.encodes(1) == 2 and t.decodes(2) == 1
    assert t.encodes((1, 2)) == (1, 2)  # a tuple is one object here: no int method for tuples


def test_calling_method_on_class_with_data_is_a_clear_error():
    with pytest.raises(TypeError, match="call the Transform instance"):
        AddOne.encodes(3)


def test_decorating_base_transform_makes_a_transform_not_a_global_change():
    def encodes(self, x: int):
        return x * 10

    t = Transform(encodes)
    assert isinstance(t, Transform) and t(2) == 20
    assert Transform()(2) == 2  # the base class did not change


# -- calling


def test_unmatched_elements_pass_through_unchanged():
    obj = object()
    res = AddOne()((1, "a", obj, 2.5))
    assert res == (2, "a", obj, 2.5) and res[2] is obj


def test_lists_and_namedtuples_are_single_objects():
    assert AddOne()([1, 2]) == [1, 2]
    P = namedtuple("P", "a b")
    assert AddOne()(P(1, 2)) == P(1, 2)


def test_tuple_subclass_is_mapped_and_keeps_its_type():
    res = AddOne()(TitledTuple((1, 2)))
    assert type(res) is TitledTuple and res == (2, 3)


def test_result_keeps_input_subclass():
    class Strip(Transform):
        def encodes(self, x: str):
            return x.strip()  # str.strip returns a plain str

    assert type(Strip()(Name(" a "))) is Name


def test_return_annotation_none_disables_retention_and_type_casts():
    class KeepPlain(Transform):
        def encodes(self, x: str) -> None:
            return x.strip()

    assert type(KeepPlain()(Name(" a "))) is str


def test_bool_input_is_not_cast_back_from_int():
    assert AddOne()(True) == 2


def test_kwargs_reach_encodes():
    class Scale(Transform):
        def encodes(self, x: int, k=1):
            return x * k

    assert Scale()((2, "a"), k=3) == (6, "a")


def test_split_idx_restricts_to_matching_calls():
    t = AddOne(split_idx=0)
    assert t(1) == 1  # called without a split: skipped, as in fastai
    assert t(1, split_idx=1) == 1
    assert t(1, split_idx=0) == 2
    assert t.decode(2, split_idx=0) == 1 and t.decode(2) == 2
    assert AddOne()(1, split_idx=1) == 2  # no split_idx: runs on every split


def test_order_from_class_constructor_and_function():
    class T(Transform):
        order = 5

    assert T().order == 5 and Transform(order=3).order == 3

    def f(x):
        return x

    f.order = 7
    assert Transform(f).order == 7 and Transform(f, order=1).order == 1


# -- setup


def test_setup_learns_state_and_train_setup_uses_train_subset():
    class Items(list):
        train = ["b", "a"]

    v = Vocab()
    v.setup(["c", "a", "b"])
    assert v.vocab == ["a", "b", "c"] and v(("b", 1)) == (1, 1)
    v.setup(Items(["z"]), train_setup=True)
    assert v.vocab == ["a", "b"]
    v.train_setup = False  # the Transform's own setting wins over the argument
    v.setup(Items(["z"]), train_setup=True)
    assert v.vocab == ["z"]


def test_setup_without_setups_is_ignored():
    assert AddOne().setup([1, 2]) is None


def test_setups_dispatch_on_items_type():
    class T(Transform):
        def setups(self, items: list):
            self.seen = "list"

    t = T()
    t.setup((1, 2))
    assert not hasattr(t, "seen")
    t.setup([1, 2])
    assert t.seen == "list"


# -- variants


def test_item_transform_gets_whole_tuple():
    class Swap(ItemTransform):
        def encodes(self, x: tuple):
            return (x[1], x[0])

        def decodes(self, x: tuple):
            return [x[1], x[0]]  # a list back: turned into a tuple

    s = Swap()
    assert s((1, "a")) == ("a", 1)
    assert s.decode(("a", 1)) == (1, "a") and type(s.decode(("a", 1))) is tuple
    assert type(s(TitledTuple((1, 2)))) is TitledTuple
    assert s.encodes((1, 2)) == (2, 1)


def test_item_transform_written_for_lists_receives_a_list():
    class Rev(ItemTransform):
        def encodes(self, x: list):
            assert type(x) is list
            x.reverse()
            return x

    assert Rev()((1, 2, 3)) == (3, 2, 1)


def test_inplace_transform_returns_its_input():
    class Append(InplaceTransform):
        def encodes(self, x: list):
            x.append(0)
            return "ignored"

    lst = [1]
    assert Append()(lst) is lst and lst == [1, 0]


def test_displayed_transform_shows_state():
    class Norm(DisplayedTransform):
        def __init__(self, mean=None):
            self.mean = mean

        def setups(self, items):
            self.mean = sum(items) / len(items)

    n = Norm()
    n.setup([1.0, 3.0])
    assert repr(n) == "Norm -- mean=2.0" and n.name == "Norm -- mean=2.0"
    class Stored(DisplayedTransform):
        def __init__(self, a=1, b=None):
            store_attr()

        def setups(self, items):
            self.b = len(items)

    st = Stored()
    assert repr(st) == "Stored -- a=1, b=None"
    st.setup([1, 2])
    assert repr(st) == "Stored -- a=1, b=2"  # the values now, not the ones given
    long = Norm(list(range(100)))
    assert repr(long).endswith("...") and len(repr(long)) < 90


def test_compose_tfms_forward_and_reverse():
    tfms = [AddOne(), Transform(lambda x: x * 10, lambda x: x // 10)]
    assert compose_tfms(1, tfms) == 20
    assert compose_tfms(20, tfms, is_enc=False, reverse=True) == 1


# -- errors


def _note(exc) -> str:
    "The one note a Transform added to `exc`."
    notes = getattr(exc, "__notes__", [])
    assert len(notes) == 1, notes
    return notes[0]


def test_error_is_the_original_exception_with_a_note_naming_transform_element_and_type():
    class Inv(Transform):
        def encodes(self, x: int):
            return 1 // x

    with pytest.raises(ZeroDivisionError) as ei:
        Inv()((1, 0, "a"))
    note = _note(ei.value)
    assert note == "Inv.encodes raised ZeroDivisionError on element 1 of a 3-tuple, of type int"
    # the very exception the function raised: its message and args untouched, nothing chained
    assert str(ei.value) == "integer division or modulo by zero" and ei.value.__cause__ is None
    assert ei.value.args == ("integer division or modulo by zero",)


def test_os_error_keeps_errno_filename_and_args(tmp_path):
    missing = tmp_path / "nope.bin"

    class Load(Transform):
        def encodes(self, x: str):
            return open(x, "rb").read()

    with pytest.raises(FileNotFoundError) as ei:
        Load()(str(missing))
    err = ei.value
    assert err.errno == 2 and err.filename == str(missing) and err.args == (2, "No such file or directory")
    assert _note(err) == "Load.encodes raised FileNotFoundError on the item (not a tuple), of type str"


def test_key_error_keeps_its_args_in_a_pipeline():
    class Lookup(Transform):
        def encodes(self, x: str):
            return {"a": 1}[x]

    pipe = Pipeline([Lookup()])
    for _ in range(2):  # the first call records the plan, the second replays it
        with pytest.raises(KeyError) as ei:
            pipe(("zz", 3))
        assert ei.value.args == ("zz",) and type(ei.value) is KeyError
        assert _note(ei.value) == "Lookup.encodes raised KeyError on element 0 of a 2-tuple, of type str"
        pipe(("a", 3))


def test_error_on_single_item_and_in_decodes():
    t = Vocab()
    t.setup(["a"])
    with pytest.raises(KeyError, match=r"Vocab.encodes .*not a tuple.*str"):
        t("zzz")
    with pytest.raises(IndexError, match="Vocab.decodes"):
        t.decode(5)


def test_key_error_message_reads_as_written():
    class Lookup(Transform):
        def encodes(self, x: str):
            raise KeyError(f"column {x!r} is not in the table")

    with pytest.raises(KeyError) as ei:
        Lookup()("txt")
    assert ei.value.args == ("column 'txt' is not in the table",)
    note = _note(ei.value)
    assert note.startswith("Lookup.encodes raised KeyError") and "\\'" not in note  # the note is plain text


def test_error_in_setups_names_the_transform():
    class Bad(Transform):
        def setups(self, items):
            raise ValueError("no data")

    with pytest.raises(ValueError, match=r"Bad.setups raised ValueError on the setup items, of type list") as ei:
        Pipeline([AddOne(), Bad()]).setup([1])
    assert ei.value.args == ("no data",)


def test_error_whose_class_needs_more_arguments_keeps_original_with_a_note():
    class T(Transform):
        def encodes(self, x: bytes):
            return x.decode("ascii")

    with pytest.raises(UnicodeDecodeError) as ei:
        T()(b"\xff")
    assert any("T.encodes" in n for n in ei.value.__notes__)


def test_exception_attributes_survive_rewrapping():
    class Skip(Exception):
        pass

    class T(Transform):
        def encodes(self, x: int):
            e = Skip("skip me")
            e.reason = "odd"
            raise e

    with pytest.raises(Skip) as ei:
        T()(1)
    assert ei.value.reason == "odd"


def test_nested_transform_error_is_not_wrapped_twice():
    inner = Vocab()
    inner.setup(["a"])
    outer = Transform(lambda x: inner(x))
    with pytest.raises(KeyError) as ei:
        outer("b")
    assert "Vocab.encodes" in _note(ei.value) and ei.value.args == ("b",)


# -- pickling


def test_pickle_and_deepcopy_keep_state_and_instance_functions():
    v = Vocab()
    v.setup(["b", "a"])
    for clone in (pickle.loads(pickle.dumps(v)), copy.deepcopy(v)):
        assert clone.vocab == ["a", "b"] and clone("b") == 1 and clone.decode(0) == "a"

    t = AddOne(split_idx=1)
    t.encodes.add(str.upper)  # an instance-level function that pickles by reference
    c = pickle.loads(pickle.dumps(t))
    assert c(("a", 1), split_idx=1) == ("A", 2) and c.split_idx == 1
    assert AddOne()("a") == "a"

    d = copy.deepcopy(t)

    @d.encodes
    def _(x: float):
        return 0.0

    assert d(1.5, split_idx=1) == 0.0 and t(1.5, split_idx=1) == 1.5  # the copy has its own dispatcher


class Late(Transform):
    "Extended only by the test below, after an instance of it was pickled."


def test_unpickled_instance_still_sees_later_class_additions():
    t = Late()
    t.encodes.add(abs)
    c = pickle.loads(pickle.dumps(t))

    @Late
    def encodes(self, x: str):
        return "late"

    assert c("s") == "late" and c(-1) == 1


def test_dispatch_helpers_handed_to_transform_dispatch_like_unannotated_functions():
    # noop (an empty Pipeline, DataBlock getters) and the partials risinstance/using_attr return are Transform
    # functions: their type hints (for type checkers) must not narrow what they apply to or drop the input's subclass
    assert noop.__annotations__ == {}
    t, n = Transform(noop), Name("a")
    assert t(n) is n and t((1, n))[1] is n and t.input_types is None
    assert Transform(risinstance(int))((1, "a", 2.0)) == (True, False, False)
    got = Transform(using_attr(str.upper, "name"))((SimpleNamespace(name="ab"), SimpleNamespace(name="c")))
    assert got == ("AB", "C")


def test_return_annotated_any_or_object_keeps_the_input_subclass_like_no_annotation():
    # `-> Any` is how a typed public function says "no particular type"; on 3.11 typing.Any is a class, and casting
    # to it would drop the input's subclass (a TensorImage coming out a plain value)
    from typing import Any

    def f_any(x) -> Any:
        return x

    def f_object(x) -> object:
        return x

    class Tag(str):
        pass

    for f in (f_any, f_object):
        out = Transform(f)(Tag("a"))
        assert type(out) is Tag, f

    class T(Transform):
        def encodes(self, x: str) -> Any:
            return x + "!"

    out = T()(Tag("a"))
    assert out == "a!" and type(out) is Tag
    from tiers.dispatch import TypeDispatch

    assert TypeDispatch([f_any]).returns("a") is None and TypeDispatch([f_object]).returns("a") is None


def test_bound_classmethod_from_a_future_annotations_module_is_a_transform():
    # `Transform(TensorPoint.create)`: the classmethod's annotations are strings (its module uses
    # `from __future__ import annotations`); the wrapper resolves them where they were written
    import sys
    import types

    mod = types.ModuleType("_future_annos_mod")
    exec(
        "from __future__ import annotations\n"
        "from typing import Any\n"
        "class Tag(str):\n"
        "    @classmethod\n"
        "    def create(cls, x: Any, suffix: str = '') -> Tag:\n"
        "        return cls(str(x) + suffix)\n",
        mod.__dict__,
    )
    sys.modules[mod.__name__] = mod
    try:
        from functools import partial

        out = Transform(mod.Tag.create)(3)
        assert out == "3" and type(out) is mod.Tag
        out = Transform(partial(mod.Tag.create, suffix="!"))(3)
        assert out == "3!" and type(out) is mod.Tag
    finally:
        del sys.modules[mod.__name__]
