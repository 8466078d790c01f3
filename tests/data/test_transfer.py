"""How batches leave worker processes: small ones pickled as bytes through the result pipe, large ones through
shared memory; either way the main process gets the same values, types and metadata as without workers."""

import pickle
from collections import namedtuple
from multiprocessing.reduction import ForkingPickler

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data._utils.collate import default_collate

import tiers.data.collate as collate
from tiers.data import DataLoader
from tiers.data.collate import PIPE_BYTES, fa_collate, to_main
from tiers.tensors import TensorImage

Pair = namedtuple("Pair", "x y")


def _through_queue(o):
    "What the main process gets back from a worker's result queue (which pickles with ForkingPickler)."
    import torch.multiprocessing  # noqa: F401  (registers torch's shared-memory reductions, as in a worker)

    return pickle.loads(ForkingPickler.dumps(o))


def test_small_batch_goes_as_bytes_and_comes_back_equal():
    img = TensorImage(torch.arange(24, dtype=torch.uint8).view(2, 3, 4), img_size=(4, 3))
    b = (img, torch.tensor([True, False]), torch.arange(6.0).view(2, 3).t(), torch.tensor(3.5),
         torch.zeros(0, 2), torch.ones(2, dtype=torch.bfloat16), Pair(torch.arange(2), ["a", "b"]), {"k": [1, 2]})
    piped = to_main(b)
    assert isinstance(piped, collate._Piped)
    got = _through_queue(piped)
    assert type(got[0]) is TensorImage and got[0].img_size == (4, 3) and torch.equal(got[0], img)
    for g, e in zip(got[1:6], b[1:6]):
        assert type(g) is torch.Tensor and g.dtype == e.dtype and g.shape == e.shape and torch.equal(g, e)
    assert isinstance(got[6], Pair) and got[6].y == ["a", "b"] and got[6].x.tolist() == [0, 1]
    assert got[7] == {"k": [1, 2]}
    conj = _through_queue(to_main(torch.tensor([1 + 2j, 3 - 1j]).conj()))
    assert conj.tolist() == [1 - 2j, 3 + 1j]
    got[0].add_(1)  # the received tensors own writable memory
    assert got[0][0, 0, 0] == 1


def test_large_or_unusual_batches_are_left_to_shared_memory():
    big = torch.zeros(PIPE_BYTES // 4 + 1)
    assert to_main((big,))[0] is big
    half = torch.zeros(PIPE_BYTES // 8 + 1)  # each under the limit, together over it
    assert not isinstance(to_main((half, half.clone())), collate._Piped)
    grad = torch.ones(2, requires_grad=True)
    assert to_main(grad) is grad
    assert isinstance(to_main(torch.ones(2)), collate._Piped)


def test_typed_stack_keeps_type_and_metadata_without_torch_function():
    xs = [TensorImage(torch.full((2, 2), float(i)), img_size=(2, 2)) for i in range(3)]
    res = fa_collate(xs)
    assert type(res) is TensorImage and res.img_size == (2, 2) and res[:, 0, 0].tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(RuntimeError, match="shapes differ"):
        fa_collate([TensorImage(torch.zeros(2)), TensorImage(torch.zeros(3))])


class _Images:
    "Typed image items large enough (with bs=8) that their batches need shared memory."

    def __init__(self, size: int):
        self.size = size

    def __len__(self):
        return 16

    def __getitem__(self, i):
        return TensorImage(torch.full((3, self.size, self.size), i, dtype=torch.uint8), img_size=self.size), i


@pytest.mark.parametrize("size", [4, 512])  # 8 x 3 x 4 x 4 B through the pipe, 8 x 3 x 512 x 512 B (6 MB) shared
def test_worker_batches_equal_main_process_batches(size):
    def run(nw):
        return list(DataLoader(_Images(size), bs=8, shuffle=True, seed=3, num_workers=nw))

    w0, w1 = run(0), run(1)
    assert len(w0) == len(w1) == 2
    for (x0, y0), (x1, y1) in zip(w0, w1):
        assert type(x1) is TensorImage and x1.img_size == size and torch.equal(x0, x1) and torch.equal(y0, y1)
        assert x1.is_shared() == (size == 512)  # small batches came as bytes, the large one in shared memory


@given(st.lists(st.tuples(st.integers(-5, 5), st.floats(-1e3, 1e3), st.integers(0, 9)), min_size=1, max_size=8),
       st.sampled_from([tuple, list]))
@settings(max_examples=40, deadline=None)
def test_fa_collate_fields_match_torch_default_collate(rows, kind):
    items = [kind((torch.full((2,), float(a)), b, c)) for a, b, c in rows]
    ours, ref = fa_collate(items), default_collate(items)
    assert type(ours) is kind and len(ours) == 3
    for o, r in zip(ours, ref):  # floats become the default float dtype (torch keeps float64)
        assert o.dtype == (torch.get_default_dtype() if r.dtype == torch.float64 else r.dtype)
        assert torch.equal(o, r.to(o.dtype))


def test_fa_collate_fields_of_different_lengths_name_the_item():
    with pytest.raises(RuntimeError, match="item 0 has 2 elements but item 2 has 3"):
        fa_collate([(1, 2), (3, 4), (5, 6, 7)])
