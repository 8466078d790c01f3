import collections.abc as cabc
import importlib.util
import numbers
import pathlib
import typing
from fractions import Fraction

import pytest

from tiers.dispatch import TypeDispatch, anno_types, typedispatch


def f_integral(x: numbers.Integral, y):
    return "integral"


def f_int_float(x: int, y: float):
    return "int,float"


def f_any(x, y):
    return "any"


def f_object(x: object, y):
    return "object"


def f_bool(x: bool, y=None):
    return "bool"


def f_real(x: numbers.Real, y=None):
    return "real"


def test_mro_order_int_bool_float_abc():
    d = TypeDispatch([f_any, f_integral, f_int_float, f_real, f_bool])
    assert d(1, 2.0) == "int,float"
    assert d(1, "a") == "integral"
    assert d(True, 2.0) == "bool"  # bool beats int even when int's pair is more specific on the second argument
    assert d(1.5, 2) == "real"
    assert d(Fraction(1, 2), None) == "real"
    assert d("s", 1) == "any"


def test_unannotated_ranks_below_object_regardless_of_order():
    for order in ([f_any, f_object], [f_object, f_any]):
        assert TypeDispatch(order)("s", 1) == "object"
    # the plum "Any tie": a specific function registered before the generic one must still win
    assert TypeDispatch([f_int_float, f_any])(1, 2.0) == "int,float"
    assert TypeDispatch([f_int_float, lambda x, y: "lambda"])(1, 2.0) == "int,float"


def test_typing_any_is_unannotated():
    def a(x: typing.Any):
        return "Any"

    def o(x: object):
        return "object"

    d = TypeDispatch([o, a])
    assert d(1) == "object"
    assert anno_types(typing.Any) == anno_types(a.__annotations__["x"])
    assert TypeDispatch([a])(1) == "Any"


def test_abc_ordering():
    def seq(x: cabc.Sequence):
        return "seq"

    def coll(x: cabc.Collection):
        return "coll"

    def it(x: cabc.Iterable):
        return "iter"

    def lst(x: list):
        return "list"

    d = TypeDispatch([it, coll, seq])
    assert d([1]) == "seq" and d((1,)) == "seq"
    assert d({1}) == "coll"
    assert d(iter([])) == "iter"
    d.add(lst)
    assert d([1]) == "list" and d((1,)) == "seq"


def test_two_arg_specialisation():
    def gen(x: numbers.Integral, y):
        return "gen"

    def spec(x: int, y: float):
        return "spec"

    def spec2(x: int, y: int):
        return "spec2"

    d = TypeDispatch([gen, spec, spec2])
    assert d(1, 1.0) == "spec"
    assert d(1, 1) == "spec2"
    assert d(1, True) == "spec2"
    assert d(1, "x") == "gen"
    assert d.resolve(int, float) is spec
    assert d[(int, int)] is spec2 and d[int] is gen and d[int, str] is gen
    assert d[str] is None


def test_subclass_and_diamond_follow_mro():
    class A:
        pass

    class B:
        pass

    class C(A, B):
        pass

    class D(B, A):
        pass

    def fa(x: A):
        return "A"

    def fb(x: B):
        return "B"

    for order in ([fa, fb], [fb, fa]):
        d = TypeDispatch(order)
        assert d(C()) == "A" and d(D()) == "B"


def test_unions():
    def u(x: int | str, y: float | None):
        return "u"

    def v(x: typing.Union[bytes, list], y):
        return "v"

    def w(x: (dict, set), y=None):  # old-style tuple annotation, used by fastai's FlipItem
        return "w"

    d = TypeDispatch([u, v, w])
    assert d(1, None) == "u" and d("s", 2.0) == "u"
    assert d(b"", 1) == "v" and d([], 1) == "v"
    assert d({}, 0) == "w" and d(set(), 0) == "w"
    with pytest.raises(TypeError, match=r"\(int, str\)"):
        d(1, "no float")
    assert anno_types(int | None) == (int, type(None))
    assert anno_types(list[int]) == (list,) and anno_types(typing.List[int]) == (list,)  # noqa: UP006


def test_bad_annotation_names_function():
    T = typing.TypeVar("T")

    def bad(x: T):
        return x

    with pytest.raises(TypeError, match="bad"):
        TypeDispatch([bad])


def test_no_match_and_ambiguity_errors_name_types():
    def s1(x: cabc.Sized):
        return "sized"

    def s2(x: cabc.Iterable):
        return "iter"

    d = TypeDispatch([s1, s2])
    with pytest.raises(TypeError, match=r"ambiguous.*\(list, not passed\).*Sized.*Iterable"):
        d([1])
    with pytest.raises(TypeError, match=r"ambiguous"):
        d.resolve(list)
    assert d(iter([])) == "iter"

    def i(x: int):
        return 1

    d2 = TypeDispatch([i])
    with pytest.raises(TypeError, match=r"no function registered for argument types \(str, not passed\).*\(int, any\)"):
        d2("x")
    with pytest.raises(TypeError, match=r"\(str, float\)"):
        d2("x", 1.0)
    with pytest.raises(TypeError, match="without positional"):
        d2()
    with pytest.raises(TypeError, match="not callable"):
        d2.add(3)
    with pytest.raises(TypeError, match="pass type"):
        d2.resolve(3)


def test_ambiguity_settled_by_exact_registration():
    def s1(x: cabc.Sized):
        return "sized"

    def s2(x: cabc.Iterable):
        return "iter"

    def exact(x: list):
        return "list"

    d = TypeDispatch([s1, s2])
    with pytest.raises(TypeError):
        d([1])
    d.add(exact)
    assert d([1]) == "list"


def test_later_identical_signature_replaces_and_cache_clears():
    def a(x: int):
        return "a"

    def b(x: int):
        return "b"

    def c(x: bool):
        return "c"

    d = TypeDispatch([a])
    assert d(True) == "a"  # cached now
    d.add(b)
    assert d(True) == "b" and len(d) == 1
    d.add(c)
    assert d(True) == "c" and d(1) == "b" and len(d) == 2


def test_kwargs_and_extra_args_pass_through():
    def f(x: int, y, z, *, k=0):
        return x + y + z + k

    d = TypeDispatch(f)
    assert d(1, 2, 3, k=4) == 10


def test_returns_and_first_and_repr():
    def a(x: int) -> float:
        return 1.0

    def b(x: str):
        return "b"

    d = TypeDispatch([a, b])
    assert d.returns(3) is float and d.returns("s") is None and d.returns(3.0) is None
    assert d.first() is a and TypeDispatch().first() is None
    r = repr(d)
    assert "(int, any) -> " in r and "a" in r and "(str, any)" in r
    assert b in d


class Encoder:
    def enc_generic(self, x):
        return ("generic", self.tag)

    def enc_int(self, x: int):
        return ("int", self.tag)

    def enc_pair(self, x: int, y: str):
        return ("int,str", self.tag)

    encodes = TypeDispatch([enc_generic, enc_int, enc_pair])

    def __init__(self, tag):
        self.tag = tag


def test_methods_dispatch_after_self():
    e = Encoder("t")
    assert e.encodes(1) == ("int", "t")
    assert e.encodes("s") == ("generic", "t")
    assert e.encodes(1, "s") == ("int,str", "t")
    assert Encoder.encodes is Encoder.__dict__["encodes"]
    assert e.encodes.returns(1) is None and len(e.encodes) == 3
    assert e.encodes.resolve(int)(5) == ("int", "t")
    assert e.encodes[int](5) == ("int", "t")
    assert "bound" in repr(e.encodes)


def test_bases_are_live():
    def p_int(x: int):
        return "parent int"

    def c_obj(x: object):
        return "child object"

    parent = TypeDispatch([p_int])
    child = TypeDispatch([c_obj], bases=[parent])
    assert child(1) == "parent int"  # the base's more specific function wins
    assert child("s") == "child object"

    def p_str(x: str):
        return "parent str"

    parent.add(p_str)  # registered after the child exists and after it cached "s"
    assert child("s") == "parent str"

    def c_int(x: int):
        return "child int"

    child.add(c_int)
    assert child(1) == "child int" and parent(1) == "parent int"
    grandchild = TypeDispatch(bases=[child])
    parent.add(lambda x: "any")
    assert grandchild(2.5) == "child object" and parent(2.5) == "any"
    with pytest.raises(TypeError, match="not a TypeDispatch"):
        TypeDispatch(bases=[p_int])


@typedispatch
def td_describe(x: float, y) -> str:
    return "float"


def test_registration_from_another_module():
    base = td_describe
    assert isinstance(base, TypeDispatch) and base is typedispatch["td_describe"]
    assert base(1.0, None) == "float"
    path = pathlib.Path(__file__).with_name("registrar_elsewhere.py")
    spec = importlib.util.spec_from_file_location("registrar_elsewhere", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert "td_describe" in typedispatch and len(base) == 3
    assert mod.td_describe is base
    assert base(mod.Celsius(20), "ok") == "20.0C:ok"
    assert base(mod.Celsius(20), 3) == "float"  # the second argument sends it back to the float version
    assert base(Fraction(1, 3), 0) == "fraction"
    assert base.returns(mod.Celsius(1)) is str  # a string annotation, evaluated in the other module
    with pytest.raises(KeyError, match="nope"):
        typedispatch["nope"]


def test_typedispatch_methods_get_separate_registries():
    class A:
        @typedispatch
        def show(self, x: int):
            return "A"

    class B:
        @typedispatch
        def show(self, x: int):
            return "B"

    assert A().show(1) == "A" and B().show(1) == "B"


def test_callable_objects_and_partials():
    import functools

    def add(k, x: int):
        return x + k

    d = TypeDispatch([functools.partial(add, 10)])
    assert d(1) == 11
    with pytest.raises(TypeError, match="no function"):
        d("s")


def pk_generic(x, y):
    return "generic"


def pk_int(x: int, y) -> list[int]:
    return "int"


def test_pickle_roundtrip_keeps_functions_and_bases():
    import pickle

    parent = TypeDispatch([pk_generic])
    child = TypeDispatch([pk_int], bases=[parent])
    assert child(1, None) == "int"
    child2 = pickle.loads(pickle.dumps(child))
    assert child2(1, "s") == "int" and child2(1.0, 2) == "generic" and len(child2) == 1
    assert child2.returns(1) is list  # `-> list[int]` is reported as the class to cast to
    parent2 = child2.bases[0]

    def late(x: float, y):
        return "late"

    parent2.add(late)  # the unpickled child is linked live to its unpickled parent
    assert child2(1.0, 2) == "late"


def test_register_alias_and_returns_of_union():
    d = TypeDispatch()

    @d.register
    def f(x: int) -> int | str:
        return x

    assert f(3) == 3 and d(3) == 3 and d.returns(3) is None


def test_object_ranks_below_abcs_that_object_satisfies():
    def o(x: object):
        return "object"

    def h(x: cabc.Hashable):
        return "hashable"

    for order in ([o, h], [h, o]):
        d = TypeDispatch(order)
        assert d(1) == "hashable" and d([]) == "object"


def test_replaced_functions_are_released():
    def a(x: int) -> int:
        return 1

    def b(x: int) -> str:
        return "b"

    d = TypeDispatch([a, b])
    assert d.returns(1) is str and len(d._rets) == 1


def test_a_defaulted_second_parameter_serves_one_argument_calls():
    def scale(x: int, k: float = 2.0):
        return x * k

    def needs_two(x: str, y: str):
        return x + y

    d = TypeDispatch([scale, needs_two])
    assert d(3) == 6.0 and d(3, 0.5) == 1.5
    assert d.resolve(int) is scale
    assert d.resolve(str) is None  # needs_two has no default for y: a one-argument call does not match it
    with pytest.raises(TypeError, match=r"\(str, not passed\)"):
        d("a")

    def generic(x: int, k=None):
        return "generic"

    d.add(generic)  # an unannotated second parameter is the better match when nothing is passed
    assert d(3) == "generic" and d(3, 0.5) == 1.5
