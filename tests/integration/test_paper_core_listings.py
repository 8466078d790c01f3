"""The paper's listings for the lowest layers (typedispatch, L, @patch, @delegates), run as written
with only the imports changed."""

import inspect
import numbers

import pytest
import torch

from tiers.dispatch import L, delegates, patch, typedispatch
from tiers.tensors import TensorImage


def test_typedispatch_listing():
    @typedispatch
    def f_td_test(x: numbers.Integral, y):
        return x + 1

    @typedispatch
    def f_td_test(x: int, y: float):  # noqa: F811 -- a second registration, as in the paper
        return x + y

    assert f_td_test(3, 2.0) == 5.0  # the specialised (int, float) version
    assert f_td_test(3, 2) == 4  # the generic Integral version
    # fastcore returned the input unchanged when nothing matched; tiers says so instead.
    with pytest.raises(TypeError, match="str"):
        f_td_test("a", "b")


def test_L_listing():
    t = L(range(12))
    assert t == list(range(12))
    assert t != list(range(11))
    t.reverse()
    assert t[0] == 11
    t[3] = "h"
    assert t[3] == "h"
    t[3, 5] = ("j", "k")
    assert t[3, 5] == ["j", "k"]
    assert t == L(t)
    assert L(L(1, 2), [3, 4]) == ([1, 2], [3, 4])
    assert repr(t).startswith("(#12) [11, 10, 9, 'j', 7, 'k'")
    # NumPy-style indexing with a mask and a list of indices
    assert L(range(5))[[True, False, True, False, True]] == [0, 2, 4]
    assert L(list("abcde"))[[4, 0]] == ["e", "a"]
    assert L("abcde") == ["abcde"]  # a string is one item, not a sequence of characters


def test_patch_listing():
    @patch
    def brighter(self: TensorImage, by: float = 0.1):
        return self + by

    img = TensorImage(torch.zeros(3, 4, 4))
    out = img.brighter(0.5)
    assert isinstance(out, TensorImage) and torch.allclose(out, torch.full((3, 4, 4), 0.5))
    del TensorImage.brighter


def test_delegates_listing():
    def basic_conv(ni, nf, ks=3, stride=1, bias=True):
        return (ni, nf, ks, stride, bias)

    @delegates(basic_conv)
    def conv_relu(ni, nf, **kwargs):
        return basic_conv(ni, nf, **kwargs)

    params = list(inspect.signature(conv_relu).parameters)
    assert params == ["ni", "nf", "ks", "stride", "bias"]
    assert conv_relu(1, 2, stride=2) == (1, 2, 3, 2, True)
