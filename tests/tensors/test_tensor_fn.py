"""`tensor` (the fastai-style constructor) and `cast`."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torch import Tensor

from tiers.tensors import TensorBase, TensorImage, TensorMask, cast, tensor


def test_tensor_from_scalars_lists_and_rest():
    assert tensor(1, 2, 3).tolist() == [1, 2, 3]
    assert tensor([[1, 2], [3, 4]]).shape == (2, 2)
    assert tensor(2.5).dtype == torch.float32  # Python floats become float32
    assert tensor(np.float64(1.5)).dtype == torch.float32
    assert tensor([1.0], dtype=torch.float64).dtype == torch.float64  # an explicit dtype is kept
    assert tensor([0.1], dtype=torch.float64).item() == 0.1  # built in float64, not via float32
    a = tensor(np.zeros(2), requires_grad=True)
    assert a.requires_grad and a.is_leaf and a.dtype == torch.float32
    assert tensor(np.zeros(2), dtype=torch.float64, device="cpu").dtype == torch.float64
    with pytest.raises(TypeError):
        tensor([1], colour="red")
    assert tensor(True).dtype == torch.bool
    assert tensor([]).shape == (0,)


def test_tensor_from_tensors_is_shared_or_stacked():
    t = torch.zeros(3)
    assert tensor(t) is t
    assert tensor(t, dtype=torch.float64).dtype == torch.float64
    assert tensor(t, requires_grad=True).requires_grad
    s = tensor([torch.zeros(2), torch.ones(2)])
    assert s.tolist() == [[0, 0], [1, 1]]
    assert tensor([np.zeros(2), np.ones(2)]).shape == (2, 2)


def test_tensor_from_arrays():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = tensor(a)
    t[0, 0] = 9
    assert a[0, 0] == 9  # shares memory with the array
    assert tensor(np.zeros(2)).dtype == torch.float32  # float64 -> float32
    assert tensor(np.zeros(2, dtype=np.uint16)).dtype == torch.float32
    ro = np.arange(3)
    ro.flags.writeable = False
    assert tensor(ro).tolist() == [0, 1, 2]  # read-only: copied, no warning
    assert tensor(np.arange(4)[::-1]).tolist() == [3, 2, 1, 0]  # negative strides
    with pytest.raises(TypeError, match="dtype object"):
        tensor(np.array([1, "a"], dtype=object))


def test_tensor_from_array_likes_and_iterables():
    class ArrayLike:
        def __array__(self, dtype=None, copy=None):
            return np.ones((2, 2), dtype=np.uint8)

    assert tensor(ArrayLike()).dtype == torch.uint8
    assert tensor(range(3)).tolist() == [0, 1, 2]
    assert tensor(x for x in (1, 2)).tolist() == [1, 2]
    with pytest.raises(TypeError, match="cannot make a tensor"):
        tensor(object())


def test_tensor_from_pandas():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    assert tensor(df).tolist() == [[1.0, 3.0], [2.0, 4.0]] and tensor(df).dtype == torch.float32
    assert tensor(df["a"]).tolist() == [1.0, 2.0]


# Generation speed depends on the machine's load (a busy CI core made it fail a health check), not on tiers.
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(arrays(st.sampled_from([np.float32, np.int64, np.int32, np.uint8, np.bool_]), st.integers(0, 4)))
def test_property_tensor_matches_array(a):
    t = tensor(a)
    assert t.shape == a.shape
    np.testing.assert_array_equal(t.numpy(), a)


def test_cast():
    t = torch.zeros(2)
    im = cast(t, TensorImage)
    assert type(im) is TensorImage and im.data_ptr() == t.data_ptr()
    im.tag = "x"
    m = cast(im, TensorMask)
    assert type(m) is TensorMask and m.tag == "x"  # metadata follows between semantic types
    p = cast(im, Tensor)
    assert type(p) is Tensor and p.__dict__ == {}  # plain tensors carry no metadata
    assert cast(im, TensorImage) is im
    assert type(cast([1.0, 2.0], TensorBase)) is TensorBase  # built from non-tensors

    class MyArr(np.ndarray):
        pass

    assert type(cast(np.zeros(2), MyArr)) is MyArr

    class Name(str):
        pass

    assert type(cast("bob", Name)) is Name
    with pytest.raises(TypeError, match="not a class"):
        cast(t, "TensorImage")
    with pytest.raises(TypeError, match="cannot cast"):
        cast(object(), int)
