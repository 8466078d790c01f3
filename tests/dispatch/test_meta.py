import builtins
import inspect

import pytest

from tiers.dispatch import (
    PrePostInitMeta,
    copy_func,
    delegates,
    funcs_kwargs,
    method,
    patch,
    patch_to,
    use_kwargs,
    use_kwargs_dict,
)


def test_patch_via_annotation_and_union():
    class A:
        def old(self):
            return "old"

    class B:
        pass

    @patch
    def greet(self: A | B, name="x") -> str:
        "Say hello."
        return f"{type(self).__name__} greets {name}"

    assert A().greet() == "A greets x" and B().greet("y") == "B greets y"
    assert A.greet.__qualname__ == "A.greet" and B.greet.__qualname__ == "B.greet"
    assert A.greet.__doc__ == "Say hello." and inspect.signature(A.greet).parameters["name"].default == "x"
    assert greet.__name__ == "greet"  # nothing clobbered it: the name held nothing before

    @patch
    def old(self: A):
        return "new " + self._orig_old()

    assert A().old() == "new old"


def test_patch_keeps_existing_module_names():
    class A:
        pass

    @patch
    def len(self: A):
        return 3

    assert len is builtins.len  # the local name still holds the builtin
    assert A().len() == 3


def test_patch_options():
    class A:
        _v = 1

    @patch(as_prop=True)
    def v(self: A):
        return self._v

    @patch(set_prop=True)
    def v(self: A, val):  # noqa: F811
        self._v = val

    @patch(cls_method=True)
    def make(cls: A):
        return cls()

    @patch_to(A, static_method=True)
    def helper(x):
        return x + 1

    a = A.make()
    assert isinstance(a, A) and a.v == 1
    a.v = 5
    assert a.v == 5 and A.helper(1) == 2

    @patch_to((A,), nm="renamed")
    def anything(self):
        return "r"

    assert a.renamed() == "r"


def test_patch_errors():
    with pytest.raises(TypeError, match="no annotation"):

        @patch
        def f(self):
            pass

    with pytest.raises(TypeError, match="not a class"):
        patch_to(3)

    with pytest.raises(ValueError, match="exclusive"):
        patch_to(int, as_prop=True, cls_method=True)

    class A:
        pass

    with pytest.raises(TypeError, match="not a property"):

        @patch(set_prop=True)
        def nope(self: A, v):
            pass


def test_copy_func_independent():
    def f(a, *, b=2):
        return a + b

    g = copy_func(f)
    g.__qualname__ = "other"
    g.__kwdefaults__["b"] = 5
    assert f.__qualname__ != "other" and f(1) == 3 and g(1) == 6


def base_fn(a, b: int = 1, c=2, *, d="d"):
    return (a, b, c, d)


def test_delegates_function_signature():
    @delegates(base_fn)
    def wrapper(x, **kwargs):
        return base_fn(x, **kwargs)

    assert str(inspect.signature(wrapper)) == "(x, *, b: int = 1, c=2, d='d')"
    assert wrapper(0, d=4) == (0, 1, 2, 4)
    assert wrapper.__annotations__["b"] is int

    @delegates(base_fn, keep=True, but=["c"])
    def wrapper2(x, b=7, **kwargs):
        return x

    assert str(inspect.signature(wrapper2)) == "(x, b=7, *, d='d', **kwargs)"


def test_delegates_class_to_base_init_and_chain():
    class Base:
        def __init__(self, a, lr=0.1, wd=0.0):
            self.lr = lr

    @delegates()
    class Child(Base):
        def __init__(self, n, **kwargs):
            super().__init__(n, **kwargs)

    @delegates()
    class GrandChild(Child):
        def __init__(self, m=3, **kwargs):
            super().__init__(m, **kwargs)

    assert str(inspect.signature(Child)) == "(n, *, lr=0.1, wd=0.0)"
    assert str(inspect.signature(GrandChild)) == "(m=3, *, lr=0.1, wd=0.0)"
    assert GrandChild(lr=1).lr == 1

    @delegates(Base)
    def make(**kwargs):
        return Base(1, **kwargs)

    assert list(inspect.signature(make).parameters) == ["lr", "wd"]


def test_delegates_errors():
    with pytest.raises(TypeError, match="no \\*\\*kwargs"):

        @delegates(base_fn)
        def f(x):
            pass

    with pytest.raises(TypeError, match="decorate a class"):

        @delegates()
        def g(**kwargs):
            pass

    class NoInit:
        pass

    with pytest.raises(TypeError, match="does not define __init__"):
        delegates(base_fn)(type("Sub", (NoInit,), {}))


def test_use_kwargs():
    @use_kwargs(["a", "b"])
    def f(x, **kwargs):
        pass

    assert str(inspect.signature(f)) == "(x, *, a=None, b=None)"

    @use_kwargs_dict(keep=True, y=1)
    def g(x, **kw):
        pass

    assert str(inspect.signature(g)) == "(x, *, y=1, **kw)"


@funcs_kwargs
class Loader:
    _methods = ["get_item", "collate"]

    def __init__(self, n=1, **kwargs):
        self.n = n

    def get_item(self, i):
        return i

    def collate(self, b):
        return list(b)


def test_funcs_kwargs_replaces_methods_and_shows_signature():
    assert str(inspect.signature(Loader)) == "(n=1, *, get_item=None, collate=None, **kwargs)"
    ld = Loader(n=2, get_item=lambda i: i * 10)
    assert ld.get_item(3) == 30 and ld.collate((1,)) == [1] and ld.n == 2
    assert Loader().get_item(3) == 3  # the class is untouched
    bound = Loader(get_item=method(lambda self, i: (self.n, i)), n=5)
    assert bound.get_item(1) == (5, 1)
    other = Loader(n=7)
    moved = Loader(get_item=other.collate)  # a bound method is rebound to the new instance
    assert moved.get_item.__self__ is moved


def test_funcs_kwargs_as_method():
    @funcs_kwargs(as_method=True)
    class Cb:
        _methods = ["before"]

        def __init__(self, tag="t"):
            self.tag = tag

        def before(self):
            return None

    assert Cb(before=lambda self: self.tag).before() == "t"
    with pytest.raises(TypeError, match="no `_methods`"):

        @funcs_kwargs
        class Empty:
            pass


def test_pre_post_init_meta():
    calls = []

    class Module(metaclass=PrePostInitMeta):
        def __pre_init__(self, *args, **kwargs):
            calls.append("pre")
            self.ready = True

        def __post_init__(self, *args, **kwargs):
            calls.append("post")

    class Net(Module):
        def __init__(self, k):
            calls.append(("init", self.ready, k))

    Net(3)
    assert calls == ["pre", ("init", True, 3), "post"]
    assert str(inspect.signature(Net)) == "(k)"  # not the metaclass's (*args, **kwargs)

    class Fixed(Module):
        __signature__ = inspect.Signature([inspect.Parameter("z", inspect.Parameter.POSITIONAL_OR_KEYWORD)])

        def __init__(self, *a):
            pass

    assert str(inspect.signature(Fixed)) == "(z)" and str(inspect.signature(Module)) == "()"
