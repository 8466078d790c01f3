"""fastai's documented behaviour of the data layer, one test per behaviour, plus the issue-17 refusals of bad data:
`DataBlock.dataloaders/databunch(item_tfms=, batch_tfms=)`, `batch_tfms=Normalize` as a class, `DataLoaders.cuda()`
without CUDA, `OneHotEncode.decode`, weighted and partial loaders, a `DataLoader` with no dataset, a single
transform for `Datasets`, the star-import surface, `Path.ls()` on what `untar_data` returns, missing targets,
unsafe archives and CSV encodings."""

import io
import subprocess
import sys
import tarfile
import warnings
import zipfile
from operator import attrgetter

import numpy as np
import pandas as pd
import pytest
import torch

import tiers.data.dataloaders as dl_module
from tiers.data import (
    CategoryBlock,
    ColReader,
    DataBlock,
    DataLoader,
    DataLoaders,
    Datasets,
    DownloadError,
    IndexSplitter,
    IntToFloatTensor,
    MissingValueError,
    MultiCategorize,
    Normalize,
    OneHotEncode,
    PartialDL,
    RegressionBlock,
    TransformBlock,
    UnsafeArchiveError,
    WeightedDL,
    read_csv,
    untar_data,
)
from tiers.data.download import extract_archive
from tiers.dispatch import Path, stop
from tiers.pipeline import Pipeline, Transform
from tiers.tensors import TensorImage, TensorMultiCategory

# ------------------------------------------------------------------ DataBlock.dataloaders / databunch transforms


class _MakeImage(Transform):
    "A stand-in for PILImage.create: an int in 0..255 becomes a 3x4x4 uint8 TensorImage around that value."

    def encodes(self, o: int):
        g = torch.Generator().manual_seed(o)
        return TensorImage(torch.randint(0, 256, (3, 4, 4), generator=g, dtype=torch.uint8))


def _image_block():
    return TransformBlock(type_tfms=_MakeImage(), batch_tfms=IntToFloatTensor)


def _image_dblock(**kwargs):
    return DataBlock(blocks=(_image_block(), CategoryBlock), get_y=lambda o: "odd" if o % 2 else "even",
                     splitter=IndexSplitter(list(range(40, 50))), **kwargs)


@pytest.mark.parametrize("method", ["dataloaders", "databunch"])
def test_dataloaders_and_databunch_take_batch_tfms_normalize_as_a_class(method):
    dls = getattr(_image_dblock(), method)(list(range(50)), bs=40, batch_tfms=Normalize, device="cpu")
    x, _ = dls.one_batch()
    # Normalize() without statistics took them from a batch: the batch comes out with mean ~0 and std ~1 per channel.
    assert isinstance(x, TensorImage) and x.dtype == torch.float32
    torch.testing.assert_close(x.mean((0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(x.std((0, 2, 3)), torch.ones(3), atol=1e-3, rtol=0)
    names = [type(t).__name__ for t in dls.train.after_batch.fs]
    assert names == ["IntToFloatTensor", "Normalize"]  # added to the block's own, in order
    # decoding undoes it: back to the uint8 pixel values
    dec = dls.train.after_batch.decode(x)
    assert dec.min() >= 0 and dec.max() <= 255 and dec.float().mean() > 50


def test_dataloaders_item_tfms_are_added_for_those_loaders_only():
    seen = []

    def spy(o):
        seen.append(o)
        return o

    dblock = _image_dblock()
    dls = dblock.dataloaders(list(range(50)), bs=10, item_tfms=Transform(spy), device="cpu")
    dls.one_batch()
    assert sum(isinstance(o, TensorImage) for o in seen) == 10  # each image of the batch went through it
    assert all("spy" not in repr(t) for t in dblock.item_tfms)  # the DataBlock itself is unchanged
    with pytest.raises(TypeError, match="item_tfms="):
        dblock.dataloaders(list(range(50)), after_item=[spy])


def test_databunch_rejects_unknown_keywords_with_their_name():
    with pytest.raises(TypeError, match="bogus"):
        _image_dblock().databunch(list(range(50)), bs=10, bogus=1)


# ------------------------------------------------------------------ DataLoaders.cuda() on a machine without CUDA


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")
def test_cuda_without_cuda_stays_on_the_default_device_and_warns_once(monkeypatch):
    monkeypatch.setattr(dl_module, "_warned_no_cuda", False)
    tdl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(4, 2)), batch_size=2)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        dls = DataLoaders(tdl, tdl).cuda()
        DataLoaders(tdl, tdl).cuda()
    msgs = [str(o.message) for o in w if "CUDA" in str(o.message)]
    assert len(msgs) == 1 and "cpu" in msgs[0]
    assert dls.device == torch.device("cpu")
    tiers_dls = DataLoaders(DataLoader(list(range(4)), bs=2), DataLoader(list(range(2)), bs=2)).cuda()
    assert tiers_dls.train.device == torch.device("cpu") and tiers_dls.one_batch().device.type == "cpu"


# ------------------------------------------------------------------ OneHotEncode


@pytest.mark.parametrize("one_hot", [torch.tensor([0, 1, 1]), torch.tensor([False, True, True]),
                                     TensorMultiCategory([0.0, 1.0, 1.0])])
def test_one_hot_encode_decodes_int_bool_and_float_one_hots_to_the_right_indices(one_hot):
    tfm = OneHotEncode(c=3)
    assert tfm.decode(one_hot).tolist() == [1, 2]


def test_one_hot_encode_encodes_lists_and_decodes_to_labels_in_a_pipeline():
    tfm = OneHotEncode(c=3)
    assert tfm([0, 2]).tolist() == [1.0, 0.0, 1.0]
    pipe = Pipeline([MultiCategorize(vocab=["a", "b", "c"]), tfm])
    assert list(pipe.decode(torch.tensor([1, 0, 1]))) == ["a", "c"]
    with pytest.raises(ValueError, match="length 4"):
        tfm.decode(torch.tensor([1, 0, 0, 1]))
    with pytest.raises(IndexError, match=r"\[5\]"):
        tfm([0, 5])


# ------------------------------------------------------------------ weighted and partial loaders


def test_weighted_dataloaders_draw_training_items_by_weight():
    n = 160
    dsets = Datasets(torch.arange(n).float(), splits=[list(range(n)), list(range(20))], allow_overlap=True)
    dls = dsets.weighted_dataloaders(wgts=[0.0] * (n - 10) + [1.0] * 10, bs=16, device="cpu")
    assert isinstance(dls.train, WeightedDL) and len(dls.train) == n // 16
    drawn = torch.cat([b[0] for b in dls.train])
    assert len(drawn) == n and drawn.min() >= n - 10  # only the weighted items are drawn, with replacement
    assert torch.cat([b[0] for b in dls.valid]).tolist() == list(range(20))  # validation reads everything in order
    with pytest.raises(ValueError, match="3 weights for 160 items"):
        dsets.weighted_dataloaders(wgts=[1, 2, 3], bs=16)


def test_datablock_weighted_dataloaders_takes_one_weight_per_source_item():
    dblock = DataBlock(blocks=(TransformBlock, CategoryBlock), get_y=lambda o: "odd" if o % 2 else "even",
                       splitter=IndexSplitter([0, 1]))
    wgts = [1.0 if i == 7 else 0.0 for i in range(10)]
    dls = dblock.weighted_dataloaders(list(range(10)), wgts=wgts, bs=4, device="cpu")
    assert set(torch.cat([b[0] for b in dls.train]).tolist()) == {7}


def test_partial_dataloaders_use_partial_n_random_items_per_epoch():
    dsets = Datasets(torch.arange(160).float(), splits=[list(range(150)), list(range(150, 160))])
    dls = dsets.partial_dataloaders(partial_n=32, bs=16, device="cpu")
    assert isinstance(dls.train, PartialDL) and len(dls.train) == 2
    epoch1 = torch.cat([b[0] for b in dls.train])
    epoch2 = torch.cat([b[0] for b in dls.train])
    assert len(epoch1) == 32 and len(set(epoch1.tolist())) == 32 and epoch1.max() < 150
    assert set(epoch1.tolist()) != set(epoch2.tolist())  # a fresh draw each epoch
    assert len(dls.valid) == 1


# ------------------------------------------------------------------ DataLoader without a dataset


def test_dataloader_without_a_dataset_iterates_create_item_until_stop():
    class CountDL(DataLoader):
        def create_item(self, s):
            self.k = getattr(self, "k", 0) + 1
            return self.k if self.k <= 10 else stop()

    assert [b.tolist() for b in CountDL(bs=4)] == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
    assert [b.tolist() for b in CountDL(bs=4, drop_last=True)] == [[1, 2, 3, 4], [5, 6, 7, 8]]
    gen = iter(range(3))
    assert [int(b) for b in DataLoader(create_item=lambda s: next(gen))] == [0, 1, 2]
    with pytest.raises(TypeError, match="no dataset"):
        list(DataLoader(bs=2))


# ------------------------------------------------------------------ a single transform where fastai takes a list


def test_datasets_takes_a_single_transform_as_one_pipeline():
    df = pd.DataFrame({"a": [5, 1, 2], "b": [1, 2, 3]})
    dsets = Datasets(df, tfms=attrgetter("a"))
    assert len(dsets.tls) == 1 and [int(o[0]) for o in dsets] == [5, 1, 2]
    two = Datasets(df, tfms=[attrgetter("a"), attrgetter("b")])
    assert [tuple(map(int, o)) for o in two] == [(5, 1), (1, 2), (2, 3)]


# ------------------------------------------------------------------ star-import surface and Path


def test_star_import_gives_the_everyday_names_and_stays_cheap():
    code = (
        "import sys\n"
        "from tiers.data.all import *\n"
        "heavy = [m for m in ('pandas', 'matplotlib.pyplot') if m in sys.modules]\n"
        "assert heavy == [], heavy\n"
        "assert torch.zeros(1).shape == (1,) and isinstance(nn.Linear(1, 1), nn.Module) and F.relu is not None\n"
        "assert isinstance(torch.zeros(1), Tensor) and np.zeros(1).shape == (1,)\n"
        "assert partial(max, 1)(2) == 2 and attrgetter('real')(3) == 3 and itemgetter(0)([4]) == 4\n"
        "assert pd.DataFrame({'a': [1]}).shape == (1, 1) and 'pandas' in sys.modules\n"
        "fig, ax = plt.subplots(); plt.close(fig)\n"
        "assert 'matplotlib.pyplot' in sys.modules\n"
        "assert L([1, 2], [3, 4]).stack().shape == (2, 2)\n"
        "assert Path('.').ls() is not None\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "MPLBACKEND": "Agg"})
    assert res.returncode == 0, res.stderr


def test_untar_data_returns_a_path_with_ls(server, home):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name in ("tiny/b.txt", "tiny/a.csv"):
            info = tarfile.TarInfo(name)
            info.size = 1
            t.addfile(info, io.BytesIO(b"x"))
    server.files["/d/tiny.tgz"] = buf.getvalue()
    path = untar_data(server.url + "/d/tiny.tgz", progress=False)
    assert isinstance(path, Path)
    assert [p.name for p in path.ls()] == ["a.csv", "b.txt"]
    assert [p.name for p in path.ls(file_exts=".csv")] == ["a.csv"]
    assert DataLoaders(path=path).path.ls() == path.ls()


# ------------------------------------------------------------------ missing targets refused at build time


def test_nan_regression_targets_are_refused_naming_column_and_rows():
    df = pd.DataFrame({"x": range(8), "y": [1.0, 2.0, np.nan, 4.0, 5.0, None, 7.0, 8.0]}, index=list("abcdefgh"))
    dblock = DataBlock(blocks=(TransformBlock, RegressionBlock), get_x=ColReader("x"), get_y=ColReader("y"))
    with pytest.raises(MissingValueError, match=r"column 'y'.*rows \['c', 'f'\]"):
        dblock.dataloaders(df, bs=2)


def test_nan_in_a_multi_value_regression_target_is_refused():
    dblock = DataBlock(blocks=(TransformBlock, RegressionBlock),
                       get_y=lambda o: [1.0, float("nan")] if o == 3 else [0.0, 1.0])
    with pytest.raises(MissingValueError, match=r"rows \[3\]"):
        dblock.dataloaders(list(range(10)), bs=2)


def test_nan_in_a_plain_float_target_is_refused():
    dblock = DataBlock(blocks=(TransformBlock, TransformBlock), get_y=lambda o: float("nan") if o == 6 else o / 2)
    with pytest.raises(MissingValueError, match=r"rows \[6\]"):
        dblock.dataloaders(list(range(10)), bs=2)


def test_missing_class_labels_are_reported_at_build_time_even_in_validation():
    df = pd.DataFrame({"x": range(10), "lbl": list("abababab") + [None, np.nan]})
    dblock = DataBlock(blocks=(TransformBlock, CategoryBlock), get_x=ColReader("x"), get_y=ColReader("lbl"),
                       splitter=IndexSplitter([8, 9]))  # the missing labels are all in the validation set
    with pytest.raises(MissingValueError, match=r"Categorize.*column 'lbl'.*rows \[8, 9\]"):
        dblock.dataloaders(df, bs=2)
    # unless the user asked for a class for them
    ok = DataBlock(blocks=(TransformBlock, CategoryBlock(add_na=True)), get_x=ColReader("x"),
                   get_y=ColReader("lbl"), splitter=IndexSplitter([8, 9])).dataloaders(df, bs=2)
    assert list(ok.vocab) == ["#na#", "a", "b"]


# ------------------------------------------------------------------ unsafe archives


def _tgz(tmp_path, members) -> Path:
    p = tmp_path / "evil.tgz"
    with tarfile.open(p, "w:gz") as t:
        for name, link in members:
            info = tarfile.TarInfo(name)
            if link is None:
                info.size = 1
                t.addfile(info, io.BytesIO(b"x"))
            else:
                info.type, info.linkname = tarfile.SYMTYPE, link
                t.addfile(info)
    return p


@pytest.mark.parametrize("members,shown", [
    ([("top/ok.txt", None), ("../evil", None)], "'../evil' would be written outside"),
    ([("/tmp/tiers_abs_evil", None)], "'/tmp/tiers_abs_evil' would be written outside"),
    ([("top/ok.txt", None), ("top/link", "/etc/passwd")], "'top/link' is a link to '/etc/passwd', outside"),
    ([("top/link", "../../outside")], "is a link to '../../outside', outside"),
])
def test_unsafe_tar_members_are_refused_before_anything_is_extracted(tmp_path, members, shown):
    dest = tmp_path / "data" / "evil"
    with pytest.raises(UnsafeArchiveError, match="refused") as e:
        extract_archive(_tgz(tmp_path, members), dest)
    assert shown in str(e.value) and str(dest) in str(e.value) and "corrupt" not in str(e.value)
    assert isinstance(e.value, DownloadError)
    assert not dest.exists() and list((tmp_path / "data").iterdir()) == []  # no temporary folder either
    assert not (tmp_path / "evil").exists()


def test_unsafe_zip_member_is_refused(tmp_path):
    p = tmp_path / "evil.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("../evil", "x")
    with pytest.raises(UnsafeArchiveError, match="'../evil' would be written outside"):
        extract_archive(p, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil").exists()


def test_links_inside_the_archive_are_fine(tmp_path):
    dest = extract_archive(_tgz(tmp_path, [("top/a.txt", None), ("top/l", "a.txt")]), tmp_path / "ok")
    assert (dest / "l").read_text() == "x"


# ------------------------------------------------------------------ CSV encodings


def test_read_csv_honours_encoding_and_names_the_file_on_a_decode_error(tmp_path):
    f = tmp_path / "latin.csv"
    f.write_bytes("name,label\ncafé,a\n".encode("latin-1"))
    assert read_csv(f, encoding="latin-1")["name"][0] == "café"
    with pytest.raises(UnicodeDecodeError, match="latin.csv.*encoding='latin-1'"):
        read_csv(f)
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_csv(tmp_path / "nope.csv")


# ------------------------------------------------------------------ a training set smaller than bs


def test_a_training_set_smaller_than_bs_keeps_its_short_batch():
    dsets = Datasets(list(range(12)), splits=[list(range(10)), [10, 11]])
    with pytest.warns(UserWarning, match="10 items, fewer than bs=64"):
        dls = dsets.dataloaders(bs=64, device="cpu")
    assert len(dls.train) == 1 and len(dls.train.one_batch()[0]) == 10  # not an epoch of zero steps
    asked = dsets.dataloaders(bs=64, drop_last=True, device="cpu")  # an explicit request is kept
    assert len(asked.train) == 0


def test_nan_in_a_multi_column_regression_target_names_the_columns():
    df = pd.DataFrame({"x": range(6), "h": [1.0, 2, 3, np.nan, 5, 6], "w": [1.0] * 6})
    dblock = DataBlock(blocks=(TransformBlock, RegressionBlock(n_out=2)), get_x=ColReader("x"),
                       get_y=ColReader(["h", "w"]))
    with pytest.raises(MissingValueError, match=r"columns \['h', 'w'\].*rows \[3\].*dropna\(subset=\['h', 'w'\]\)"):
        dblock.dataloaders(df, bs=2)


def test_summary_takes_the_same_extra_transforms_as_dataloaders(capsys):
    _image_dblock().summary(list(range(50)), bs=4, batch_tfms=Normalize, device="cpu")
    out = capsys.readouterr().out
    assert "applying Normalize" in out and "No step failed." in out


def test_get_empty_df_gives_n_empty_rows_to_fill():
    from tiers.data import get_empty_df

    rows = get_empty_df(3)
    assert len(rows) == 3 and all(isinstance(r, pd.Series) and len(r) == 0 for r in rows)
    rows[0]["label"] = "cat"
    assert rows[0]["label"] == "cat"
