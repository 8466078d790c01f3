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


# ---- batches of pairs collated column by column (`Pipeline.map_pairs` + `DataLoader._collate_pairs`) ---------------
class RowsDL(TfmdDL):
    "The same loader with the column path switched off: pairs are built, then `do_batch` collates the list."

    def _collates_columns(self):
        return False


def _epochs(cls, items, n=2, **kw):
    dl = cls(items, bs=4, shuffle=True, seed=3, after_item=[FlipItem()], **kw)
    return [list(dl) for _ in range(n)]


def test_column_batches_equal_row_batches():
    items = _typed_items(10)
    assert TfmdDL(items, bs=4, after_item=[FlipItem()])._collates_columns()
    cols, rows = _epochs(TfmdDL, items), _epochs(RowsDL, items)
    _same(cols, rows)
    for epoch in cols:
        for x, y in epoch:
            assert type(x) is TensorImage and x.tag in range(10) and y.dtype == torch.int64  # a first item's tag


def test_column_batches_take_the_columns_path():
    dl = TfmdDL(_typed_items(8), bs=4, after_item=[FlipItem()])
    dl.one_batch()  # the first batch records the plan; the next ones give columns
    make = dl._item_maker()
    assert make is not None and type(make([0, 1, 2, 3])) is tuple
    assert RowsDL(_typed_items(8), bs=4, after_item=[FlipItem()])._item_maker()([0, 1]).__class__ is list


def test_column_batches_with_mixed_items_equal_row_batches():
    # a label of another type, a namedtuple, a 3-tuple in the data: the batches that hold them go the row way
    items = [(TensorImage(torch.full((1, 2, 3), float(i))), i) for i in range(12)]
    items[5] = (TensorImage(torch.full((1, 2, 3), 5.0)), 5.5)
    _same(_epochs(TfmdDL, items), _epochs(RowsDL, items))

    def outcome(cls, data):
        try:
            return _epochs(cls, data)
        except (RuntimeError, TypeError, ValueError) as e:  # a batch that cannot be collated: the same error both ways
            return f"{type(e).__name__}: {e}"

    for odd in (Pair(TensorImage(torch.zeros(1, 2, 3)), 7), (TensorImage(torch.zeros(1, 2, 3)), 7, 8), 3):
        items2 = list(items)
        items2[9] = odd
        got, want = outcome(TfmdDL, items2), outcome(RowsDL, items2)
        if isinstance(want, str):
            assert got == want
        else:
            _same(got, want)


def test_column_batches_report_ragged_shapes_like_row_batches():
    items = _typed_items(8)
    items[6] = (TensorImage(torch.zeros(1, 3, 3)), 6)
    msgs = []
    for cls in (TfmdDL, RowsDL):
        dl = cls(items, bs=8, after_item=[FlipItem()])
        dl.do_batch([dl.do_item(i) for i in range(2)])
        dl.after_item.map_items([items[0]] * 2)  # the plan the column path needs
        with pytest.raises(RuntimeError, match="element 0 of each item") as ei:
            list(dl)
        msgs.append(str(ei.value))
    assert msgs[0] == msgs[1] and "[1, 3, 3] (first at item 6)" in msgs[0]


@pytest.mark.parametrize("hook", ["before_batch", "create_batch", "retain", "do_batch"])
def test_a_replaced_batch_step_gets_the_list_of_pairs(hook):
    seen = []

    def spy(*args):
        seen.append(args[0])
        return getattr(DataLoader, hook)(dl, *args) if hook != "before_batch" else args[0]

    items = _typed_items(8)
    dl = TfmdDL(items, bs=4, after_item=[FlipItem()], **({hook: spy} if hook != "before_batch" else {}))
    if hook == "before_batch":
        dl.before_batch = Pipeline([Transform(lambda b: (seen.append(b), b)[1])])
    assert not dl._collates_columns()
    got = list(dl)
    want = list(RowsDL(items, bs=4, after_item=[FlipItem()]))
    _same(got, want)
    batches = [b for b in seen if isinstance(b, list)] if hook != "retain" else seen
    assert batches and all(type(o) is tuple for b in batches for o in (b if isinstance(b, list) else [b]))


def test_skipped_items_in_column_batches():
    class SkipOdd(Transform):
        def encodes(self, x: TensorImage):
            if int(x.flatten()[0]) % 2:
                raise SkipItemException()
            return x.flip(-1)

    items = [(TensorImage(torch.full((1, 2, 3), float(i))), i) for i in range(10)]
    for cls in (TfmdDL, RowsDL):
        dl = cls(items, bs=4, after_item=[SkipOdd()])
        assert [b[1].tolist() for b in dl] == [[0, 2], [4, 6], [8]]
