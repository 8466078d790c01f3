"""`tiers.vision.widgets` (AUDIT2 D15): fastbook chapter 2's `ImageClassifierCleaner` on a real (tiny, untrained)
vision learner, driven without a browser by setting the dropdowns' values as a user's clicks do; and the
`tiers-vision[widgets]` extra named when ipywidgets is missing."""

import io
import shutil
from importlib.util import find_spec

import pytest
from PIL import Image

from tiers.dispatch import Path
from tiers.vision.all import *  # noqa: F403
from tiers.vision.data_samples import make_mnist_tiny
from tiers.vision.widgets import DELETE, KEEP, ImageClassifierCleaner, ImagesCleaner, carousel, widget

# the module imports without ipywidgets (only the last test needs it absent); the others need the extra
needs_ipywidgets = pytest.mark.skipif(find_spec("ipywidgets") is None, reason="tiers-vision[widgets] not installed")


@pytest.fixture
def mnist_learn(tmp_path):
    # a fresh copy per test: the tests delete and move its files, as fastbook's cleaning loop does
    path = make_mnist_tiny(tmp_path / "mnist", max_per_class=10)
    dls = ImageDataLoaders.from_folder(path, valid="valid", bs=8, num_workers=0)  # noqa: F405
    learn = vision_learner(dls, resnet18, pretrained=False)  # noqa: F405
    return path, learn


def _losses(learn, ds_idx):
    dl = learn.dls[ds_idx].new(shuffle=False, drop_last=False)
    _, targs, losses = learn.get_preds(dl=dl, with_loss=True)
    return {Path(fn): (int(t), float(loss)) for fn, t, loss in zip(dl.items, targs, losses)}


@needs_ipywidgets
def test_cleaner_shows_a_category_highest_loss_first_and_reports_the_marks(mnist_learn):
    path, learn = mnist_learn
    cleaner = ImageClassifierCleaner(learn)
    assert cleaner.dd_cats.options == ("3", "7") and cleaner.dd_ds.options == ("Train", "Valid")
    assert (cleaner.dd_cats.value, cleaner.dd_ds.value) == ("3", "Train")
    ref = _losses(learn, 0)
    threes = [fn for fn, (t, _) in ref.items() if t == 0]
    assert sorted(cleaner.fns) == sorted(threes) and all(fn.parent == path / "train" / "3" for fn in cleaner.fns)
    shown = [ref[fn][1] for fn in cleaner.fns]
    assert shown == sorted(shown, reverse=True) and shown[0] > shown[-1]           # highest loss first
    # one thumbnail + dropdown per file, options <Keep>, <Delete>, then the categories
    boxes = cleaner.iw.widget.children
    assert len(boxes) == len(cleaner.fns) == len(cleaner.iw.dropdowns)
    img, dd = boxes[0].children
    assert img.value[:8] == b"\x89PNG\r\n\x1a\n" and dd.options == (KEEP, DELETE, "3", "7")
    assert cleaner.values == [KEEP] * len(cleaner.fns) and cleaner.delete() == [] and cleaner.change() == []

    cleaner.iw.dropdowns[0].value = DELETE
    cleaner.iw.dropdowns[2].value = "7"
    cleaner.iw.dropdowns[3].value = DELETE
    assert cleaner.delete() == [0, 3] and cleaner.change() == [(2, "7")]
    bundle = cleaner._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle

    # fastbook's loops, verbatim
    to_delete = [cleaner.fns[i] for i in cleaner.delete()]
    moved = cleaner.fns[2]
    for idx in cleaner.delete():
        cleaner.fns[idx].unlink()
    for idx, cat in cleaner.change():
        shutil.move(str(cleaner.fns[idx]), path / "train" / cat)
    assert not any(fn.exists() for fn in to_delete) and (path / "train" / "7" / moved.name).exists()

    # another category re-renders from <Keep>; coming back leaves out the deleted and moved files
    cleaner.dd_cats.value = "7"
    sevens = [fn for fn, (t, _) in ref.items() if t == 1]
    assert sorted(cleaner.fns) == sorted(sevens) and cleaner.delete() == [] and cleaner.values[0] == KEEP
    cleaner.dd_cats.value = "3"
    assert sorted(cleaner.fns) == sorted(set(threes) - {*to_delete, moved})

    # the validation set
    cleaner.dd_ds.value = "Valid"
    valid_ref = _losses(learn, 1)
    assert sorted(cleaner.fns) == sorted(fn for fn, (t, _) in valid_ref.items() if t == 0)
    assert all(fn.parent == path / "valid" / "3" for fn in cleaner.fns)
    assert len(cleaner.iw.widget.children) == len(cleaner.fns) > 0


@needs_ipywidgets
def test_cleaner_max_n_and_refusals(mnist_learn):
    _, learn = mnist_learn
    cleaner = ImageClassifierCleaner(learn, max_n=2, height=16, width=16)
    assert len(cleaner.fns) == 2 and len(cleaner.iw.widget.children) == 2
    thumb = Image.open(io.BytesIO(cleaner.iw.widget.children[0].children[0].value))
    assert thumb.size == (16, 16)                                     # 28px digits scaled down to fit 16x16
    with pytest.raises(ValueError, match="clash"):
        ImagesCleaner(opts=["<Keep>", "a"])
    learn.dls.vocab = None   # a learner without categories (regression)
    with pytest.raises(ValueError, match="needs a classifier"):
        ImageClassifierCleaner(learn)


@needs_ipywidgets
def test_images_cleaner_widget_and_carousel(tmp_path):
    fns = []
    for i, colour in enumerate(("red", "green", "blue")):
        fn = tmp_path / f"{i}.png"
        Image.new("RGB", (300, 100), colour).save(fn)
        fns.append(fn)
    ic = ImagesCleaner(opts=("cat", "dog"), height=50, width=60, max_n=2)
    ic.set_fns(fns)
    assert ic.fns == [Path(fns[0]), Path(fns[1])] and isinstance(ic.fns[0], Path)
    ic.dropdowns[1].value = "dog"
    assert ic.change() == [(1, "dog")] and ic.delete() == []
    thumb = Image.open(io.BytesIO(ic.widget.children[0].children[0].value))
    assert thumb.size == (60, 20)                                    # fit in 60x50, aspect kept
    w = widget(Image.new("L", (8, 8)), {"height": "20px"}, width="30px")
    assert w.layout.height == "20px" and w.layout.width == "30px" and w.format == "png"
    box = carousel([w], width="100%")
    assert box.children == (w,) and box.layout.flex_flow == "row" and box.layout.width == "100%"
    with pytest.raises(TypeError, match="cannot show"):
        widget(3.5)
    with pytest.raises(FileNotFoundError) as e:
        widget(tmp_path / "missing.png")
    assert "missing.png" in "".join(e.value.__notes__)


@needs_ipywidgets
def test_star_import_brings_the_ipywidgets_names():
    import ipywidgets

    ns: dict = {}
    exec("from tiers.vision.widgets import *", ns)
    assert ns["VBox"] is ipywidgets.VBox and ns["FileUpload"] is ipywidgets.FileUpload
    assert ns["ImageClassifierCleaner"] is ImageClassifierCleaner and ns["widgets"] is ipywidgets.widgets


WITHOUT = """
import tiers.vision.widgets as w
attempt("images_cleaner", lambda: w.ImagesCleaner())
attempt("cleaner", lambda: w.ImageClassifierCleaner(None))
attempt("widget", lambda: w.widget(b""))
attempt("star", lambda: exec("from tiers.vision.widgets import *", {}))
"""


@pytest.mark.slow
def test_without_ipywidgets_the_widgets_name_the_extra(run_without, check_extra):
    res = run_without(("ipywidgets",), WITHOUT)
    check_extra(res["images_cleaner"], "ipywidgets", "ImagesCleaner", "tiers-vision", "widgets")
    check_extra(res["cleaner"], "ipywidgets", "ImageClassifierCleaner", "tiers-vision", "widgets")
    check_extra(res["widget"], "ipywidgets", "widget", "tiers-vision", "widgets")
    check_extra(res["star"], "ipywidgets", "tiers.vision.widgets.", "tiers-vision", "widgets")
    assert res["loaded"] == []
