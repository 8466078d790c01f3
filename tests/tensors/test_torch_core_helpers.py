"""fastai's `torch_core` helpers, one test per documented behaviour: `L.tensored/stack/cat`, `concat`, `Chunks`,
`item_find`/`find_device`, `get_first`, `unsqueeze`/`unsqueeze_`, `nested_reorder`, `logit`, `np_func`, torch
version checks, `make_cross_image`, `show_image_batch`, and `defaults.use_cuda` in `default_device`."""

import string

import numpy as np
import pytest
import torch

from tiers.dispatch import L as DispatchL
from tiers.dispatch import defaults
from tiers.tensors import (
    Chunks,
    L,
    TensorBase,
    TensorImage,
    concat,
    default_device,
    find_device,
    get_first,
    ismin_torch,
    item_find,
    logit,
    make_cross_image,
    nested_reorder,
    notmax_torch,
    np_func,
    show_image_batch,
    to_detach,
    unsqueeze,
    unsqueeze_,
)


def test_L_tensored_stack_and_cat():
    t = L([1, 2], [3, 4])
    assert all(isinstance(o, torch.Tensor) for o in t.tensored())
    assert t.stack().tolist() == [[1, 2], [3, 4]]
    assert t.stack(dim=1).tolist() == [[1, 3], [2, 4]]
    assert t.cat().tolist() == [1, 2, 3, 4]
    assert L(np.array([1.0]), np.array([2.0])).cat().dtype == torch.float32  # through `tensor`: float64 -> 32


def test_there_is_one_L_and_every_L_has_the_torch_methods():
    assert L is DispatchL  # the tensors layer registers the methods; it does not subclass or patch
    mapped = DispatchL(1, 2).map(lambda o: [o, o])
    assert type(mapped) is DispatchL and mapped.stack().tolist() == [[1, 1], [2, 2]]
    assert DispatchL([1], [2]).cat().tolist() == [1, 2]


def test_concat_lists_tuples_scalars_arrays_and_tensors():
    assert concat([1], [1, 2]) == [1, 1, 2]
    res = concat((1,), (1, 2))
    assert res == (1, 1, 2) and type(res) is tuple
    assert concat([1, 1], 1) == [1, 1, 1]
    res = concat(1, 1, 1)
    assert isinstance(res, L) and list(res) == [1, 1, 1]
    res = concat(L(1, 2), 1)
    assert isinstance(res, L) and list(res) == [1, 2, 1]
    assert concat(np.array([1]), np.array([2, 3])).tolist() == [1, 2, 3]
    res = concat(TensorBase([1]), TensorBase([2, 3]))
    assert type(res) is TensorBase and res.tolist() == [1, 2, 3]
    assert concat() == []


def _letter_docs():
    return L(list(string.ascii_lowercase[a:b]) for a, b in ((0, 3), (3, 7), (7, 8), (8, 16), (16, 24), (24, 26)))


def test_chunks_index_a_list_of_lists_as_one_sequence():
    b = Chunks(_letter_docs())
    assert len(b) == 26
    assert [b[o] for o in range(5)] == list("abcde")
    assert [b[-o] for o in range(1, 6)] == list("zyxwv")
    assert b[6:13] == list("ghijklm")
    assert b[20:77] == list("uvwxyz")
    assert b[:5] == list("abcde") and b[:2] == ["a", "b"]
    with pytest.raises(IndexError, match="26"):
        b[26]


def test_chunks_of_tensors_keep_their_type():
    t = torch.arange(26)
    b = Chunks(L(TensorBase(t[a:c]) for a, c in ((0, 3), (3, 7), (7, 8), (8, 16), (16, 24), (24, 26))))
    assert [int(b[o]) for o in range(5)] == [0, 1, 2, 3, 4]
    assert [int(b[-o]) for o in range(1, 6)] == [25, 24, 23, 22, 21]
    res = b[6:13]
    assert type(res) is TensorBase and res.tolist() == list(range(6, 13))
    assert b[20:77].tolist() == list(range(20, 26))
    assert type(b[3]) is TensorBase


def test_item_find_and_find_device():
    t = torch.zeros(1)
    dev = default_device()
    t2 = t.to(dev)
    for b in (t2, [t2, t2], {"a": t2, "b": t2}, {"a": [[t2], [t2]], "b": t2}):
        assert find_device(b) == dev
    assert item_find(([3, 4], 5)) == 3
    assert item_find({"x": 1, "y": 2}, "y") == 2 and item_find({"x": 1, "y": 2}, 1) == 2
    with pytest.raises(TypeError, match="str"):
        find_device(["a"])


def test_get_first_of_a_list_and_of_an_iloc_holder():
    class Series:  # what pandas offers: positional access through iloc
        iloc = [7, 8]

        def __getitem__(self, k):
            raise KeyError(k)

    assert get_first([1, 2]) == 1 and get_first(Series()) == 7


def test_unsqueeze_adds_n_dimensions():
    t = torch.tensor([1])
    t2 = unsqueeze(t, n=2)
    assert torch.equal(t2, t[:, None, None])
    assert unsqueeze(t, dim=0, n=3).shape == (1, 1, 1, 1)
    unsqueeze_(t, n=2)
    assert torch.equal(t, t2)


def test_nested_reorder():
    x, y = torch.tensor([1, 2, 3]), torch.tensor([4, 5, 6])
    idxs = torch.tensor([2, 0, 1])
    res = nested_reorder(([x, y], x, None), idxs)
    assert res[0][0].tolist() == [3, 1, 2] and res[0][1].tolist() == [6, 4, 5] and res[2] is None
    assert isinstance(res, tuple) and isinstance(res[0], list)
    with pytest.raises(TypeError, match="str"):
        nested_reorder("abc", idxs)


def test_logit_inverts_sigmoid_and_stays_finite_at_0_and_1():
    x = torch.tensor([-3.0, 0.0, 2.0])
    torch.testing.assert_close(logit(torch.sigmoid(x)), x, atol=1e-4, rtol=0)
    assert torch.isfinite(logit(torch.tensor([0.0, 1.0]))).all()


def test_np_func_wraps_numpy_functions_for_tensors():
    @np_func
    def mult(a, b):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
        return a * b

    res = mult(torch.tensor([2.0]), torch.tensor([3.0]))
    assert isinstance(res, torch.Tensor) and res.tolist() == [6.0]
    assert mult.__name__ == "mult"
    assert np_func(np.maximum)(torch.tensor([1, 5]), torch.tensor([3, 2])).tolist() == [3, 5]


def test_to_detach_detaches_and_moves_to_cpu_keeping_types():
    t = TensorImage(torch.ones(2, requires_grad=True) * 2)
    res = to_detach({"a": [t]})
    assert not res["a"][0].requires_grad and type(res["a"][0]) is TensorImage and res["a"][0].device.type == "cpu"
    assert to_detach(t, cpu=False).device == t.device


def test_torch_version_checks():
    assert ismin_torch("1.0") and not ismin_torch("99.0")
    assert notmax_torch("99.0") and not notmax_torch("1.0")


def test_make_cross_image():
    bw = make_cross_image()
    assert bw.shape == (5, 5) and bw.sum() == 9 and bw[2].tolist() == [1.0] * 5
    col = make_cross_image(bw=False)
    assert col.shape == (3, 5, 5) and col[0, 2].sum() == 5 and col[1, :, 2].sum() == 5 and col[2].sum() == 0


def test_show_image_batch(plt):
    ims = torch.rand(4, 3, 5, 5)
    axs = show_image_batch((ims, ["a", "b", "c", "d"]), items=4, cols=2)
    assert axs.shape == (2, 2) and [ax.get_title() for ax in axs.flatten()] == ["a", "b", "c", "d"]


def test_defaults_use_cuda_false_keeps_default_device_on_cpu(monkeypatch):
    monkeypatch.setattr(defaults, "use_cuda", False)
    assert default_device() == torch.device("cpu")
    if not torch.cuda.is_available() and not torch.backends.mps.is_available():
        monkeypatch.setattr(defaults, "use_cuda", True)  # demands an accelerator: there is none here
        with pytest.raises(RuntimeError, match="no CUDA"):
            default_device()


def test_interp_1d_matches_numpy_inside_the_range():
    from tiers.tensors import interp_1d

    brks = torch.tensor([0.0, 1, 2, 4, 8, 64])
    ys = torch.arange(6.0) / 5
    pts = torch.tensor([0.2, 0.5, 0.8, 3, 5, 63])
    torch.testing.assert_close(interp_1d(pts, brks, ys), torch.tensor(np.interp(pts, brks, ys), dtype=torch.float32))
    assert interp_1d(torch.tensor([65.0]), brks, ys).item() > 1.0  # the last segment extended, as fastai's
    with pytest.raises(ValueError, match="two points"):
        interp_1d(pts, brks[:1], ys[:1])


def test_pca_projects_on_the_main_directions():
    from tiers.tensors import pca

    g = torch.Generator().manual_seed(0)
    direction = torch.tensor([3.0, 4.0]) / 5
    x = torch.randn(200, 1, generator=g) * 5 * direction + torch.randn(200, 2, generator=g) * 0.1
    p = pca(x, k=1)
    assert p.shape == (200, 1)
    centred = x - x.mean(0)
    assert abs(torch.corrcoef(torch.stack([p[:, 0], centred @ direction]))[0, 1]) > 0.99
