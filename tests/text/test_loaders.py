"""LMDataLoader (stream batching), SortedDL (length bucketing) and padding."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tiers.tensors import TensorText
from tiers.text.loaders import (
    LMDataLoader,
    Pad_Chunk,
    Pad_Input,
    SortedDL,
    pad_chunk,
    pad_input,
    pad_input_chunk,
)
from tiers.text.transforms import LMTensorText


def docs_of(lens, start=0):
    out, v = [], start
    for n in lens:
        out.append(TensorText(torch.arange(v, v + n)))
        v += n
    return out


def collect(dl):
    xs, ys = zip(*[(x, y) for x, y in dl])
    return xs, ys


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 30), min_size=1, max_size=12), st.integers(1, 5), st.integers(1, 9))
def test_lm_stream_rows_are_contiguous_and_targets_shifted(lens, bs, seq_len):
    docs = docs_of(lens)
    total = sum(lens)
    if (total - 1) // bs < 1:
        with pytest.raises(ValueError, match="too few"):
            LMDataLoader(docs, bs=bs, seq_len=seq_len)
        return
    dl = LMDataLoader(docs, bs=bs, seq_len=seq_len)
    xs, ys = collect(dl)
    assert len(xs) == len(dl) == dl.n_batches
    assert all(isinstance(x, LMTensorText) and x.shape[0] == bs for x in xs)
    assert all(x.shape[1] == seq_len for x in xs[:-1]) and xs[-1].shape[1] == dl.last_len
    rows_x, rows_y = torch.cat(xs, dim=1), torch.cat(ys, dim=1)  # (bs, bl): each row read in order
    stream = torch.arange(total)
    bl = (total - 1) // bs
    assert torch.equal(rows_x, stream[: bs * bl].view(bs, bl))
    assert torch.equal(rows_y, stream[1: bs * bl + 1].view(bs, bl))


def test_lm_shuffle_reorders_documents_each_epoch():
    docs = docs_of([5] * 12)
    dl = LMDataLoader(docs, bs=2, seq_len=4, shuffle=True, seed=0)
    streams = []
    for _ in range(3):
        xs, _ = collect(dl)
        rows = torch.cat(xs, dim=1)
        stream = rows.reshape(-1)
        streams.append(stream.tolist())
        # Documents stay whole (runs of 5 consecutive ids starting at a multiple of 5).
        starts = stream[::5][: len(stream) // 5]
        assert all(int(s) % 5 == 0 for s in starts)
    assert streams[0] != streams[1] != streams[2]
    # The same seed gives the same epochs.
    dl2 = LMDataLoader(docs, bs=2, seq_len=4, shuffle=True, seed=0)
    assert torch.cat(collect(dl2)[0], dim=1).reshape(-1).tolist() == streams[0]


def test_lm_new_keeps_lengths_and_changes_seq_len():
    docs = docs_of([10, 7, 9])
    dl = LMDataLoader(docs, bs=2, seq_len=5)
    dl2 = dl.new(seq_len=3)
    assert dl2.lens == dl.lens and dl2.seq_len == 3 and dl2.n_batches == 4
    x, y = dl2.one_batch()
    assert x.shape == (2, 3)
    with pytest.raises(ValueError, match="seq_len"):
        LMDataLoader(docs, seq_len=0)
    with pytest.raises(IndexError):
        dl.create_item(dl.n)


def test_pad_chunk_and_pad_input():
    x = TensorText(torch.tensor([5, 6, 7]))
    assert pad_chunk(x, pad_idx=0, seq_len=2, pad_len=8).tolist() == [0, 0, 0, 0, 5, 6, 7, 0]
    assert pad_chunk(x, pad_idx=0, pad_first=False, seq_len=2, pad_len=8).tolist() == [5, 6, 7, 0, 0, 0, 0, 0]
    assert isinstance(pad_chunk(x, seq_len=2, pad_len=3), TensorText)
    with pytest.raises(ValueError, match="pad_len=2"):
        pad_chunk(x, pad_len=2)
    samples = [(TensorText(torch.tensor([1, 2, 3])), 0), (TensorText(torch.tensor([4])), 1)]
    assert [s[0].tolist() for s in pad_input(samples, pad_idx=9)] == [[1, 2, 3], [4, 9, 9]]
    assert [s[0].tolist() for s in pad_input(samples, pad_idx=9, pad_first=True)] == [[1, 2, 3], [9, 9, 4]]
    assert [s[0].tolist() for s in pad_input(samples, pad_idx=9, backwards=True)] == [[3, 2, 1], [4, 9, 9]]
    out = pad_input_chunk(samples, pad_idx=9, seq_len=2)
    assert [s[0].tolist() for s in out] == [[1, 2, 3], [9, 9, 4]] and out[1][1] == 1
    pc = Pad_Chunk(pad_idx=9, seq_len=2)
    assert [s[0].tolist() for s in pc(samples)] == [[1, 2, 3], [9, 9, 4]]
    assert pc.decode((TensorText(torch.tensor([9, 9, 4])), 1))[0].tolist() == [4]
    assert [s[0].tolist() for s in Pad_Input(pad_idx=9)(samples)] == [[1, 2, 3], [4, 9, 9]]


def sorted_ds(lens):
    return [(TensorText(torch.arange(n) + 2), i % 2) for i, n in enumerate(lens)]


def test_sorted_dl_validation_is_longest_first_and_padded():
    lens = [3, 9, 1, 7, 5, 4]
    dl = SortedDL(sorted_ds(lens), bs=2, before_batch=Pad_Chunk(seq_len=2))
    batches = list(dl)
    got = [int((x != 1).sum(1)[i]) for x, _ in batches for i in range(x.shape[0])]
    assert got == sorted(lens, reverse=True)
    x, y = batches[0]
    assert x.shape == (2, 9) and x[1].tolist() == [1, 1, 2, 3, 4, 5, 6, 7, 8]  # a whole chunk of 2 pads in front
    x3, _ = batches[2]
    assert x3[1].tolist() == [1, 1, 2]  # 2 pads: one chunk in front; a 3rd pad would go at the end
    assert dl.res == lens and dl.idx_max == 1


def test_sorted_dl_training_buckets_and_puts_longest_first():
    lens = list(range(1, 41))
    dl = SortedDL(sorted_ds(lens), bs=4, shuffle=True, seed=3, before_batch=Pad_Chunk(seq_len=8))
    seen = []
    for k, (x, _) in enumerate(dl):
        row_lens = (x != 1).sum(1).tolist()
        assert row_lens == sorted(row_lens, reverse=True)
        if k == 0:
            assert max(row_lens) == 40
        seen += row_lens
    assert sorted(seen) == lens  # every item once (drop_last is off here)
    epoch1 = [(x != 1).sum(1).tolist() for x, _ in dl]
    epoch2 = [(x != 1).sum(1).tolist() for x, _ in dl]
    assert epoch1 != epoch2 and epoch1[0][0] == epoch2[0][0] == 40
    dl_new = dl.new(sorted_ds(lens[:8]))
    assert dl_new.res == lens[:8] and dl.new().res == dl.res


def test_lm_loader_with_worker_processes_matches_main_process():
    docs = docs_of([7, 11, 5, 9, 13])
    dl = LMDataLoader(docs, bs=3, seq_len=4, shuffle=True, seed=1)
    dlw = LMDataLoader(docs, bs=3, seq_len=4, shuffle=True, seed=1, num_workers=1)
    for (x, y), (xw, yw) in zip(dl, dlw):
        assert torch.equal(x, xw) and torch.equal(y, yw)
