"""The lowest layers' conveniences the paper describes (typedispatch, L, @patch, @delegates), exercised on examples of
our own. The paper's listings themselves, as printed, run in test_paper_printed_core.py."""

import inspect
import numbers

import pytest
import torch

from tiers.dispatch import L, delegates, patch, typedispatch
from tiers.tensors import TensorImage


def test_typedispatch_without_a_match_says_so():
    @typedispatch
    def f_td_test(x: numbers.Integral, y):
        return x + 1

    @typedispatch
    def f_td_test(x: int, y: float):  # noqa: F811 -- a second registration
        return x + y

    assert f_td_test(3, 2.0) == 5.0 and f_td_test(3, 2) == 4
    # fastcore returned the input unchanged when nothing matched; tiers says so instead.
    with pytest.raises(TypeError, match="str"):
        f_td_test("a", "b")


def test_L_indexing_and_repr():
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


def test_patch_on_a_tiers_tensor_class():
    @patch
    def brighter(self: TensorImage, by: float = 0.1):
        return self + by

    img = TensorImage(torch.zeros(3, 4, 4))
    out = img.brighter(0.5)
    assert isinstance(out, TensorImage) and torch.allclose(out, torch.full((3, 4, 4), 0.5))
    del TensorImage.brighter


def test_delegates_on_a_function():
    def basic_conv(ni, nf, ks=3, stride=1, bias=True):
        return (ni, nf, ks, stride, bias)

    @delegates(basic_conv)
    def conv_relu(ni, nf, **kwargs):
        return basic_conv(ni, nf, **kwargs)

    params = list(inspect.signature(conv_relu).parameters)
    assert params == ["ni", "nf", "ks", "stride", "bias"]
    assert conv_relu(1, 2, stride=2) == (1, 2, 3, 2, True)
