"""The loader's fast paths give what the general paths give: `DataLoader.retain` (which skips `retain_types` when no
element needs a cast), the per-epoch item maker (which replaces per-batch checks), and `fa_collate` on plain tuples
(one pass checks lengths and transposes)."""

from collections import namedtuple

import pytest
import torch

from tiers.data import DataLoader, SkipItemException, TfmdDL, fa_collate
from tiers.dispatch import retain_types
from tiers.pipeline import Pipeline, Transform
from tiers.tensors import TensorBase, TensorCategory, TensorImage


class Tagged(TensorBase):
    pass


def _same(a, b):
    "Same nested structure, types, metadata and values."
    assert type(a) is type(b)
    if isinstance(a, tuple | list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, torch.Tensor):
        assert a.__dict__ == b.__dict__
        torch.testing.assert_close(a.as_subclass(torch.Tensor), b.as_subclass(torch.Tensor))
    else:
        assert a == b


Pair = namedtuple("Pair", "x y")
_CASES = {
    # (collated batch, first item): the usual batch, where the fast path answers
    "typed image + int label": (
        (TensorImage(torch.zeros(2, 3)), torch.tensor([1, 2])), (TensorImage(torch.zeros(3)), 1)),
    "plain tensors": ((torch.zeros(2, 3), torch.zeros(2)), (torch.zeros(3), torch.tensor(0.0))),
    "None element": ((torch.zeros(2), None), (torch.zeros(1), None)),
    # cases the general rule must handle: a cast, nested containers, another container type
    "element to cast": ((torch.zeros(2), torch.tensor([1, 0])), (TensorImage(torch.zeros(1), tag="t"), TensorCategory(1))),
    "nested tuple": (((torch.zeros(2), torch.zeros(2)), torch.zeros(2)), ((Tagged(torch.zeros(1)), torch.zeros(1)), 0)),
    "nested list": (([torch.zeros(2)], torch.zeros(2)), ([Tagged(torch.zeros(1), k=1)], 0)),
    "namedtuple item": ((torch.zeros(2), torch.zeros(2)), Pair(Tagged(torch.zeros(1)), 0)),
    "list batch": ([torch.zeros(2), torch.zeros(2)], (Tagged(torch.zeros(1)), 0)),
    "length mismatch": ((torch.zeros(2),), (Tagged(torch.zeros(1)), 0)),
    "single tensor": (torch.zeros(2), Tagged(torch.zeros(1), k=2)),
}


@pytest.mark.parametrize("name", sorted(_CASES))
def test_retain_matches_retain_types(name):
    res, first = _CASES[name]
    dl = DataLoader([first], bs=1)
    _same(dl.retain(res, [first]), retain_types(res, first))


def test_retain_fast_path_keeps_the_batch_object():
    res = (TensorImage(torch.zeros(2, 3)), torch.tensor([1, 2]))
    assert DataLoader([], bs=1).retain(res, [(TensorImage(torch.zeros(3)), 1)]) is res


def test_retain_without_batching_uses_the_item_itself():
    dl = DataLoader([(Tagged(torch.zeros(1), k=3), 0)], bs=None)
    res = (torch.zeros(1), torch.tensor(0))
    _same(dl.retain(res, (Tagged(torch.zeros(1), k=3), 0)), retain_types(res, (Tagged(torch.zeros(1), k=3), 0)))


class FlipItem(Transform):
    def encodes(self, x: TensorImage):
        return x.flip(-1)


def _typed_items(n=10):
    return [(TensorImage(torch.arange(6.0).reshape(1, 2, 3) + i, tag=i), i) for i in range(n)]


def test_item_maker_matches_the_per_item_loop():
    items = _typed_items()
    fast = TfmdDL(items, bs=4, after_item=[FlipItem()])
    # the same loader whose do_item is replaced takes the general per-item loop
    slow = TfmdDL(items, bs=4, after_item=[FlipItem()])
    slow.do_item = lambda i: slow.after_item(slow.create_item(i))
    assert fast._item_maker() is not None and slow._item_maker() is None
    for a, b in zip(fast, slow, strict=True):
        _same(a, b)
        assert type(a[0]) is TensorImage and a[0].tag == b[0].tag


def test_item_maker_is_worked_out_each_epoch():
    dl = TfmdDL(_typed_items(4), bs=4)
    first = dl.one_batch()
    dl.after_item = Pipeline([FlipItem()])
    second = dl.one_batch()
    torch.testing.assert_close(second[0].as_subclass(torch.Tensor), first[0].flip(-1).as_subclass(torch.Tensor))


def test_item_maker_with_a_plain_function_and_no_after_item():
    data = list(range(7))
    assert [b.tolist() for b in DataLoader(data, bs=3, after_item=lambda o: o * 10)] == [[0, 10, 20], [30, 40, 50], [60]]
    assert [b.tolist() for b in DataLoader(data, bs=3)] == [[0, 1, 2], [3, 4, 5], [6]]


def test_skipped_items_fall_back_to_the_per_item_loop():
    def skip_odd(o):
        if o % 2:
            raise SkipItemException()
        return o

    dl = DataLoader(list(range(10)), bs=4, after_item=skip_odd)
    assert [b.tolist() for b in dl] == [[0, 2], [4, 6], [8]]


@pytest.mark.parametrize("kind", [tuple, list])
def test_collate_ragged_items_named_the_same_way(kind):
    items = [kind([torch.zeros(2), 1]), kind([torch.zeros(2), 2, 3])]
    with pytest.raises(RuntimeError, match=r"item 0 has 2 elements but item 1 has 3"):
        fa_collate(items)


def test_collate_plain_tuples_like_namedtuples_field_by_field():
    items = [(TensorImage(torch.full((2,), float(i)), tag="a"), i) for i in range(3)]
    x, y = fa_collate(items)
    assert type(x) is TensorImage and x.tag == "a" and x.shape == (3, 2) and y.tolist() == [0, 1, 2]
    px, py = fa_collate([Pair(*o) for o in items])
    assert type(fa_collate([Pair(*o) for o in items])) is Pair
    torch.testing.assert_close(px.as_subclass(torch.Tensor), x.as_subclass(torch.Tensor))
    assert torch.equal(py, y)
