from collections import namedtuple

import pytest

from tiers.dispatch import retain_type, retain_types


class Name(str):
    pass


class MyList(list):
    pass


class Point(tuple):
    pass


def test_retain_str_int_subclasses():
    assert type(retain_type("bob", Name("alice"))) is Name
    assert retain_type(3, Name("alice")) == 3 and type(retain_type(3, Name("a"))) is int
    assert type(retain_type("x", typ=Name)) is Name
    assert retain_type("x") == "x" and retain_type(None, Name("a")) is None
    n = Name("a")
    assert retain_type(n, "plain") is n  # Name is not a parent of str: unchanged


def test_retain_mutable_via_class_assignment():
    new = [1, 2]
    res = retain_type(new, MyList([0]))
    assert type(res) is MyList and res == [1, 2]


def test_retain_unsafe_layout_leaves_unchanged():
    class Slotted:
        __slots__ = ("a",)

    class Child(Slotted):
        __slots__ = ("b",)

    s = Slotted()
    assert type(retain_type(s, Child())) is Slotted


def test_retain_bad_typ():
    with pytest.raises(TypeError, match="not a class"):
        retain_type(1, typ="int")


def test_retain_types_nested():
    res = retain_types(("a", ["b", 1]), (Name("x"), MyList([Name("y"), 2])))
    assert type(res) is tuple and type(res[0]) is Name
    assert type(res[1]) is MyList and type(res[1][0]) is Name and type(res[1][1]) is int
    res = retain_types(("a", "b"), typs=(Name, None))
    assert type(res[0]) is Name and type(res[1]) is str
    assert type(retain_types(("a", "b"), Point(("c", "d")))) is Point
    NT = namedtuple("NT", "a b")
    res = retain_types(("a", 1), NT(Name("q"), 3))
    assert type(res) is NT and type(res.a) is Name
    assert retain_types(5, 6) == 5


@pytest.mark.slow  # importing torch takes ~3 s
def test_retain_tensor_keeps_subclass_and_metadata():
    torch = pytest.importorskip("torch")

    class TImg(torch.Tensor):
        pass

    old = torch.zeros(2).as_subclass(TImg)
    old.meta = {"size": 2}
    new = torch.ones(2)
    res = retain_type(new, old)
    assert type(res) is TImg and res.meta == {"size": 2} and torch.equal(res, new)
    res.meta2 = 1
    assert not hasattr(new, "meta") and not hasattr(old, "meta2")
    t = torch.ones(1).as_subclass(TImg)
    t.meta = "own"
    assert retain_type(t, old) is t and t.meta == "own"
