"""Audit 2: the applications' show_batch/show_results in a real Jupyter kernel (nbclient + ipykernel), as a fastai
user's notebook runs them: segmentation (an image per call), text, tabular and collab (an HTML table with a readable
text form). No stream output (no warning, no stray print), no error, no echoed return value."""

import base64
import io
import os

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

pytestmark = pytest.mark.slow

CELLS = {
    "imports": """\
import torch
torch.manual_seed(0); torch.set_num_threads(1)
from tiers.vision.all import *
from tiers.text.all import *
from tiers.tabular.all import *
from tiers.tabular.samples import make_adult_sample
from tiers.collab.all import *""",
    "seg_show_batch": """\
cpath = make_camvid_tiny({data!r} + '/camvid', n_images=8)
sdls = SegmentationDataLoaders.from_label_func(path=cpath, bs=4, fnames=get_image_files(cpath/"images"),
    label_func=lambda o: cpath/'labels'/f'{{o.stem}}_P{{o.suffix}}', codes=np.loadtxt(cpath/'codes.txt', dtype=str),
    batch_tfms=[*aug_transforms(size=(36,48)), Normalize.from_stats(*imagenet_stats)])
sdls.show_batch()""",
    "text_show_results": """\
tdls = TextDataLoaders.from_df(make_imdb_df(80), text_col='text', label_col='label', valid_col='is_valid', bs=8)
tl = text_classifier_learner(tdls, AWD_LSTM, config=dict(awd_lstm_clas_config, emb_sz=16, n_hid=16, n_layers=1),
                             pretrained=False, metrics=accuracy)
tl.fit_one_cycle(1, 1e-2)
tl.show_results(max_n=2)""",
    "tab_show_results": """\
adult = pd.read_csv(make_adult_sample({data!r} + '/adult', n=300))
tabdls = TabularDataLoaders.from_df(adult, procs=[Categorify, FillMissing, Normalize], cat_names=['workclass', 'education'],
                                    cont_names=['age', 'fnlwgt'], y_names='salary', valid_idx=list(range(240, 300)), bs=32)
tabl = tabular_learner(tabdls, layers=[16], metrics=accuracy)
tabl.fit_one_cycle(1)
tabl.show_results(max_n=3)""",
    "collab_show_results": """\
make_ratings_sample({data!r} + '/ml', n_users=30, n_items=40, n_ratings=600)
cdls = CollabDataLoaders.from_csv({data!r} + '/ml/ratings.csv', bs=64, seed=0)
cl = collab_learner(cdls, n_factors=8, y_range=(0, 5.5))
cl.fit_one_cycle(1, 5e-3)
cl.show_results(max_n=3)""",
}


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nb2")
    nb = nbformat.v4.new_notebook()
    for name, src in CELLS.items():
        cell = nbformat.v4.new_code_cell(src.format(data=str(tmp)) if "{data" in src else src)
        cell.metadata["name"] = name
        nb.cells.append(cell)
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "TIERS_DEBUG")}
    env["OMP_NUM_THREADS"] = "1"
    client = nbclient.NotebookClient(nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp)}})
    client.execute(env=env)
    return {c.metadata["name"]: c.outputs for c in nb.cells}


def _kinds(outputs):
    return [o.output_type for o in outputs]


def test_imports_print_nothing(executed):
    assert executed["imports"] == []


def test_segmentation_show_batch_is_one_image_of_the_batch(executed):
    from PIL import Image

    outs = executed["seg_show_batch"]
    assert _kinds(outs) == ["display_data"], outs
    png = Image.open(io.BytesIO(base64.b64decode(outs[0].data["image/png"])))
    assert png.size[0] > 200 and png.size[1] > 200


@pytest.mark.parametrize("name,columns", [
    ("text_show_results", ["text", "category", "prediction"]),
    ("tab_show_results", ["workclass", "education", "age", "salary", "salary_pred"]),
    ("collab_show_results", ["userId", "movieId", "rating", "rating_pred"]),
])
def test_fit_then_show_results_is_the_progress_table_then_one_html_table(executed, name, columns):
    outs = executed[name]
    assert _kinds(outs) == ["display_data", "display_data"], outs  # the fit (bar + metrics), the results table
    fit_html = outs[0].data["text/html"]
    assert 'value="1" max="1"' in fit_html and "train_loss" in fit_html
    html, text = outs[1].data["text/html"], outs[1].data["text/plain"]
    assert "<table" in html and "dataframe" in html
    for col in columns:
        assert f"<th>{col}</th>" in html, (col, html[:500])
        assert col in text
    assert html.count("<tr>") >= 2  # one per row shown (the header row has a style)
    assert "Traceback" not in text
