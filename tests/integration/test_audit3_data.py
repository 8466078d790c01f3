"""Audit 3 (data and pipeline): a transform factory given without its call (`batch_tfms=aug_transforms`) is refused
instead of training without augmentation (E13); batches of three elements give two model inputs as in fastai (E14);
an offline download says the host cannot be reached and how to work without the network (E20); labels that are
None are named by item (E21d). Each test failed before its fix."""

import io
import socket
import tarfile

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader as TorchDataLoader
from torch.utils.data import TensorDataset

from tiers.data.all import (
    CategoryBlock,
    DataBlock,
    DataLoader,
    DataLoaders,
    Datasets,
    DownloadError,
    IndexSplitter,
    MissingValueError,
    TfmdLists,
    TransformBlock,
    URLs,
    download_url,
    untar_data,
)
from tiers.dispatch import fastuple
from tiers.pipeline import Pipeline, Transform
from tiers.train.all import CrossEntropyLossFlat, Learner, Module
from tiers.vision.all import (
    DihedralItem,
    Flip,
    FlipItem,
    ImageBlock,
    ImageDataLoaders,
    PILImage,
    RandomResizedCrop,
    RandomResizedCropGPU,
    Resize,
    TensorImage,
    aug_transforms,
    get_image_files,
    make_mnist_tiny,
    parent_label,
)


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    return make_mnist_tiny(tmp_path_factory.mktemp("a3") / "mnist_tiny", max_per_class=12)


# ---- E13: a transform factory given without its call ----------------------------------------------------------------
@pytest.mark.parametrize("arg", ["batch_tfms", "item_tfms"])
def test_aug_transforms_without_its_call_is_refused_naming_the_fix(mnist, arg):
    # Before: `aug_transforms` became a Transform dispatching on `mult: float`, matched nothing, and every batch
    # passed through unchanged: training without augmentation, silently.
    with pytest.raises(TypeError, match=r"aug_transforms .*call it: aug_transforms\(\)"):
        ImageDataLoaders.from_folder(mnist, bs=8, **{arg: aug_transforms})
    with pytest.raises(TypeError, match=r"call it: aug_transforms\(\)"):
        Pipeline([aug_transforms])


def test_an_uncalled_factory_among_other_batch_tfms_is_refused(mnist):
    def my_augs(mult: float = 1.0):  # a user's factory without a return annotation: caught by the batch rule
        return [Flip(p=mult)]

    with pytest.raises(TypeError, match=r"my_augs, whose first parameter is annotated float.*call it: my_augs\(\)"):
        ImageDataLoaders.from_folder(mnist, bs=8, batch_tfms=[my_augs, *aug_transforms()])
    # called, it is fine
    dls = ImageDataLoaders.from_folder(mnist, bs=8, batch_tfms=my_augs())
    assert any(type(t) is Flip for t in dls.train.after_batch.fs)


def test_ordinary_function_tfms_still_work(mnist):
    def negate(x: TensorImage):  # an annotated batch function
        return -x

    seen = []

    def count(b):  # an unannotated one runs on every element of the batch
        seen.append(len(b))
        return b

    negate.order = 20  # after IntToFloatTensor: negative floats
    dls = ImageDataLoaders.from_folder(mnist, bs=8, batch_tfms=[negate, count])
    x, _ = dls.one_batch()
    assert x.max() <= 0 < -x.min() and seen[-2:] == [8, 8]

    # scalar-annotated functions on items (not batches) are ordinary transforms
    def plus1(x: int) -> int:
        return x + 1

    def tokens(s: str) -> list:  # returns a list, but needs its input: not a factory
        return s.split()

    assert Pipeline([plus1, plus1])(1) == 3 and Pipeline([tokens])("a b") == ["a", "b"]
    dsets = Datasets(list(range(6)), [[plus1], [lambda o: o % 2]], splits=[[0, 1, 2, 3], [4, 5]])
    assert dsets[0] == (1, 0)
    b = dsets.dataloaders(bs=2, after_item=[plus1]).valid.one_batch()  # after_item sees ints: plus1 runs again
    assert b[0].tolist() == [6, 7] and b[1].tolist() == [1, 2]


# ---- E14: batches of three elements have two inputs -------------------------------------------------------------------
class _Pair(fastuple):
    "fastai's Siamese tutorial item: (image 1, image 2, same?)."


class _PairTfm(Transform):
    def encodes(self, i: int):
        g = torch.Generator().manual_seed(i)
        a = torch.randn(3, generator=g)
        same = i % 2
        return _Pair(a, a + (0.0 if same else 3.0), same)


class _TwoInputs(Module):
    def __init__(self):
        self.lin = nn.Linear(6, 2)

    def forward(self, x1, x2):
        return self.lin(torch.cat([x1, x2], 1))


def _siamese_dls():
    tls = TfmdLists(list(range(48)), _PairTfm(), splits=[list(range(40)), list(range(40, 48))])
    return tls.dataloaders(bs=8)


def test_tfmdlists_of_three_tuples_give_two_inputs():
    dls = _siamese_dls()
    assert dls.train.n_inp == 2 and dls.n_inp == 2
    x1, x2, y = dls.one_batch()
    assert x1.shape == x2.shape == (8, 3) and y.shape == (8,)


def test_siamese_tutorial_trains_with_learner():
    learn = Learner(_siamese_dls(), _TwoInputs(), loss_func=CrossEntropyLossFlat())
    learn.fit(1, 1e-2)
    assert len(learn.recorder.values) == 1


def _three_tensors():
    g = torch.Generator().manual_seed(0)
    x1, x2 = torch.randn(64, 3, generator=g), torch.randn(64, 3, generator=g)
    return TensorDataset(x1, x2, (x1.sum(1) > x2.sum(1)).long())


def test_plain_loaders_of_three_tensors_give_two_inputs_and_train():
    # Before: a dataset without n_inp had one input, so a two-input model got (x1,) and the targets (x2, y).
    ds = _three_tensors()
    for dls in (DataLoaders(DataLoader(ds, bs=16, shuffle=True), DataLoader(ds, bs=16)),
                DataLoaders(TorchDataLoader(ds, batch_size=16, shuffle=True), TorchDataLoader(ds, batch_size=16))):
        assert dls.n_inp == 2
        torch.manual_seed(0)
        learn = Learner(dls, _TwoInputs(), loss_func=nn.CrossEntropyLoss())
        learn.fit(2, 1e-1)
        assert len(learn.recorder.values) == 2
    # two-element items keep one input; a stream is not read ahead
    ds2 = TensorDataset(torch.randn(8, 3), torch.arange(8))
    assert DataLoaders(DataLoader(ds2, bs=4), DataLoader(ds2, bs=4)).n_inp == 1
    assert DataLoader(iter([(1, 2, 3)]), bs=1).n_inp == 1


def test_an_explicit_n_inp_always_wins():
    ds = _three_tensors()
    dls = DataLoaders(DataLoader(ds, bs=16), DataLoader(ds, bs=16))
    dls.n_inp = 1
    assert dls.n_inp == 1
    dsets = Datasets(list(range(8)), [[lambda o: float(o)], [lambda o: -float(o)], [lambda o: o % 2]],
                     splits=[[0, 1, 2, 3, 4, 5], [6, 7]], n_inp=1)
    assert dsets.n_inp == 1 and dsets.dataloaders(bs=2).n_inp == 1
    dblock = DataBlock(blocks=(TransformBlock, TransformBlock, CategoryBlock), n_inp=1,
                       getters=[lambda o: float(o), lambda o: -float(o), lambda o: o % 2],
                       splitter=IndexSplitter([6, 7]))
    assert dblock.dataloaders(list(range(8)), bs=2).n_inp == 1
    assert DataBlock(blocks=(TransformBlock, TransformBlock, CategoryBlock)).n_inp == 2  # DataBlock's default


# ---- E20: offline downloads ------------------------------------------------------------------------------------------
def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connections are refused, as for a host that cannot be reached
    return port


def _tgz(folder: str, files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_offline_untar_data_says_the_host_cannot_be_reached_and_how_to_work_offline(home, monkeypatch):
    # URLs.PETS as it would be fetched from an unreachable S3 (a closed port on this machine)
    s3 = f"http://127.0.0.1:{_closed_port()}/fast-ai-"
    monkeypatch.setattr(URLs, "S3", s3)
    monkeypatch.setattr(URLs, "S3_MODEL", f"{s3}modelzoo/")
    url = f"{s3}imageclas/oxford-iiit-pet.tgz"
    with pytest.raises(DownloadError) as info:
        untar_data(url, retries=1)
    e = info.value
    msg, notes = str(e), "\n".join(getattr(e, "__notes__", []))
    # Before: "... If the file on the server changed on purpose, update its entry in the checks registry."
    assert "cannot be reached" in msg and "offline?" in msg and "refused" in msg and e.unreachable
    assert "checks registry" not in msg + notes
    arch = home / "archive" / "oxford-iiit-pet.tgz"
    assert str(arch) in notes and "TIERS_DATA_URL" in notes and "base_url" in notes
    assert "make_pets_tiny()" in notes and "make_mnist_tiny()" in notes
    # what the hint says works: the archive put there is extracted without the network
    arch.parent.mkdir(parents=True, exist_ok=True)
    arch.write_bytes(_tgz("oxford-iiit-pet", {"images/a_1.jpg": b"x"}))
    path = untar_data(url, retries=0)
    assert (path / "images" / "a_1.jpg").read_bytes() == b"x"


def test_a_file_failing_its_checks_keeps_the_registry_hint(server, home, tmp_path):
    server.files["/x.tgz"] = b"0123456789"
    with pytest.raises(DownloadError) as info:
        download_url(server.url + "/x.tgz", tmp_path / "x.tgz", size=11, retries=1, backoff=0)
    msg = str(info.value)
    assert "checks registry" in msg and "cannot be reached" not in msg and info.value.unreachable is None
    with pytest.raises(DownloadError) as info:
        untar_data(server.url + "/x.tgz", checks={"size": 11, "sha256": "0" * 64}, retries=1)
    assert "checks registry" in str(info.value) and not getattr(info.value, "__notes__", None)


def test_a_server_that_keeps_failing_is_not_called_unreachable(server, tmp_path):
    server.status["/y.tgz"] = 503
    with pytest.raises(DownloadError) as info:
        download_url(server.url + "/y.tgz", tmp_path / "y.tgz", retries=1, backoff=0)
    msg = str(info.value)
    assert "503" in msg and "answered but kept failing" in msg and "checks registry" not in msg
    assert info.value.unreachable is None


# ---- E21d: labels that are None ---------------------------------------------------------------------------------------
def test_a_label_function_returning_none_names_the_items_and_the_function():
    items = [f"img_{i}.png" for i in range(10)]

    def label_of(o):
        return None if o in ("img_3.png", "img_7.png") else o[0]

    dblock = DataBlock(blocks=(TransformBlock, CategoryBlock), get_y=label_of, splitter=IndexSplitter([0, 1]))
    # Before: TypeError: CategoryMap: cannot sort labels of mixed types ['NoneType', 'str']
    with pytest.raises(MissingValueError, match=r"rows \[3, 7\]; items \['img_3.png', 'img_7.png'\]") as info:
        dblock.dataloaders(items, bs=2)
    assert "label_of returned None" in str(info.value)


# ---- E13b: an item transform given in batch_tfms ------------------------------------------------------------------
@pytest.mark.parametrize("tfm, fix", [(Resize(20), r"aug_transforms\(size=\.\.\.\)"),
                                      (RandomResizedCrop(20), "RandomResizedCropGPU")])
def test_an_item_transform_in_batch_tfms_is_refused_naming_it_and_the_fix(mnist, tfm, fix):
    # Before: its encodes take PIL images, a collated batch holds tensors: batches stayed 28x28, no word.
    name = type(tfm).__name__
    with pytest.raises(TypeError, match=rf"batch_tfms .*holds {name}, an item transform.*Put {name} in item_tfms.*{fix}"):
        ImageDataLoaders.from_folder(mnist, bs=8, batch_tfms=[tfm])
    dblock = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, get_y=parent_label,
                       batch_tfms=[*aug_transforms(), tfm])
    with pytest.raises(TypeError, match=rf"holds {name}, an item transform"):
        dblock.dataloaders(mnist, bs=8)
    # where it belongs it works, and the batch version is accepted in batch_tfms
    assert ImageDataLoaders.from_folder(mnist, bs=8, item_tfms=tfm).one_batch()[0].shape[-2:] == (20, 20)
    dls = ImageDataLoaders.from_folder(mnist, bs=8, batch_tfms=[RandomResizedCropGPU(20, min_scale=1.0)])
    assert dls.train.one_batch()[0].shape[-2:] == (20, 20)


def test_a_users_pil_only_transform_in_batch_tfms_is_refused(mnist):
    class Posterize(Transform):
        def encodes(self, x: PILImage):
            return x.quantize(4).convert("RGB")

    with pytest.raises(TypeError, match=r"holds Posterize, an item transform: its encodes take PILImage"):
        ImageDataLoaders.from_folder(mnist, bs=8, batch_tfms=[Posterize()])
    ImageDataLoaders.from_folder(mnist, bs=8, item_tfms=[Posterize()]).one_batch()


def test_transforms_that_also_take_batches_stay_allowed_in_batch_tfms(mnist):
    # FlipItem/DihedralItem have a TensorImage encodes too (fastai's as well): in batch_tfms they flip the whole batch
    class Both(Transform):
        def encodes(self, x: PILImage):
            return x

        def encodes(self, x: TensorImage):  # noqa: F811
            return x + 1

    Both.order = 20  # after IntToFloatTensor
    plain = ImageDataLoaders.from_folder(mnist, bs=8, shuffle=False).train.one_batch()[0]
    flipped = ImageDataLoaders.from_folder(mnist, bs=8, shuffle=False,
                                           batch_tfms=[FlipItem(p=1.0)]).train.one_batch()[0]
    assert torch.equal(flipped, plain.flip(-1))
    ImageDataLoaders.from_folder(mnist, bs=8, batch_tfms=[DihedralItem(p=1.0)]).one_batch()
    b = ImageDataLoaders.from_folder(mnist, bs=8, shuffle=False, batch_tfms=[Both()]).train.one_batch()[0]
    assert torch.allclose(b, plain + 1)


# ---- E27: from_df with absolute paths in the file column ----------------------------------------------------------
def test_from_df_with_absolute_paths_finds_the_files(mnist):
    import pandas as pd

    files = get_image_files(mnist)
    df = pd.DataFrame({"fname": [str(f) for f in files], "label": [parent_label(f) for f in files]})
    # Before: FileNotFoundError: load_image: no image file at .//tmp/.../mnist_tiny/train/3/....png
    for kw in ({}, {"path": mnist}):
        dls = ImageDataLoaders.from_df(df, fn_col="fname", label_col="label", bs=8, seed=0, **kw)
        x, y = dls.train.one_batch()
        assert x.shape == (8, 3, 28, 28) and len(dls.train_ds) + len(dls.valid_ds) == len(files)
    # relative names still get the folder prefix
    rel = df.assign(fname=[str(f.relative_to(mnist)) for f in files])
    assert ImageDataLoaders.from_df(rel, mnist, fn_col="fname", label_col="label", bs=8).one_batch()[0].shape[0] == 8


def test_from_df_with_names_that_already_hold_the_folder_says_so(mnist, monkeypatch):
    import pandas as pd

    monkeypatch.chdir(mnist.parent)
    files = get_image_files(mnist)
    df = pd.DataFrame({"fname": [str(f.relative_to(mnist.parent)) for f in files],
                       "label": [parent_label(f) for f in files]})
    # Before: only "no image file at mnist_tiny/mnist_tiny/train/3/....png"
    with pytest.raises(FileNotFoundError) as info:
        ImageDataLoaders.from_df(df, mnist.name, fn_col="fname", label_col="label", bs=8).one_batch()
    notes = "\n".join(info.value.__notes__)
    assert f"The path repeats its folder '{mnist.name}'" in notes and "pass path='.'" in notes
    assert ImageDataLoaders.from_df(df, fn_col="fname", label_col="label", bs=8).one_batch()[0].shape[0] == 8
