"""A fastai-style notebook executed through a real Jupyter kernel (nbclient + ipykernel): what the saved notebook
holds afterwards. One image per plot, no stray reprs (no list of axes, no returned Figure shown twice, no escaped
strings), HTML tables, no stale or duplicated progress frames, a one-line Ctrl-C message, and the fit after an
interrupted one drawing its progress in its own cell."""

import base64
import io
import os
import re

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

pytestmark = pytest.mark.slow

SETUP = """\
import os, signal
import torch
from torch import nn
from tiers.dispatch import L
from tiers.vision.all import *
torch.manual_seed(0)
torch.set_num_threads(1)
path = make_mnist_tiny({data!r})
dblock = DataBlock(blocks=(ImageBlock(cls=PILImageBW), CategoryBlock), get_items=get_image_files,
                   splitter=GrandparentSplitter(), get_y=parent_label)
dls = dblock.dataloaders(path, bs=32)
def tiny_cnn():
    return nn.Sequential(nn.Conv2d(1, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1),
                         nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 2))
learn = Learner(dls, tiny_cnn(), metrics=accuracy)"""

ERROR = """\
class Broken(Callback):
    "A bug in a callback: the fit stops with an error in the second batch."
    def after_batch(self):
        if self.iter == 1:
            raise ValueError("a bug in a callback")
learn.fit(2, 1e-3, cbs=Broken())"""

INTERRUPT = """\
class CtrlC(Callback):
    "Presses Ctrl-C (a real SIGINT to this kernel) during the third batch of the second epoch."
    def after_batch(self):
        if self.training and self.epoch == 1 and self.iter == 2:
            os.kill(os.getpid(), signal.SIGINT)
learn.fit(3, 1e-2, cbs=CtrlC())"""

TABULAR = """\
from tiers.tabular.all import TabularDataLoaders, Categorify, FillMissing, Normalize
from tiers.tabular.samples import make_adult_sample
csv = make_adult_sample({data!r}, n=200)
tdls = TabularDataLoaders.from_csv(csv, y_names="salary", cat_names=["workclass", "education"],
                                   cont_names=["age", "fnlwgt"], procs=[Categorify, FillMissing, Normalize], bs=16)
tdls.show_batch(max_n=4)"""

TEXT = """\
from tiers.text.all import TextDataLoaders
from tiers.text.samples import make_imdb_df
xdls = TextDataLoaders.from_df(make_imdb_df(60), text_col="text", label_col="label", valid_col="is_valid", bs=8)
xdls.show_batch(max_n=2)"""

CELLS = {
    "setup": SETUP,
    "show_batch": "dls.show_batch(max_n=4)",
    "lr_find": "learn.lr_find(num_it=30)",
    "fit": "learn.fit_one_cycle(3, 5e-2)",
    "plot_loss": "learn.recorder.plot_loss()",
    "show_results": "learn.show_results(max_n=4)",
    "confusion": "interp = ClassificationInterpretation.from_learner(learn)\ninterp.plot_confusion_matrix()",
    "top_losses": "interp.plot_top_losses(4)",
    "report": "interp.print_classification_report()",
    "summary": "learn.summary()",
    "dblock_summary": "dblock.summary(path)",
    "L": "L(range(100))",
    "tabular": TABULAR,
    "text": TEXT,
    "error": ERROR,
    "interrupted": INTERRUPT,
    "next_fit": "learn.fit(1, 1e-3)",
}

PLOTS = ["show_batch", "lr_find", "plot_loss", "show_results", "confusion", "top_losses"]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The notebook, executed once by a real kernel (the Python running the tests, with tiers installed)."""
    tmp = tmp_path_factory.mktemp("nb")
    nb = nbformat.v4.new_notebook()
    for name, src in CELLS.items():
        cell = nbformat.v4.new_code_cell(src.format(data=str(tmp / name)) if "{data" in src else src)
        cell.metadata["name"] = name
        if name in ("interrupted", "error"):
            cell.metadata["tags"] = ["raises-exception"]  # the interrupted fit's cell ends with its error
        nb.cells.append(cell)
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "TIERS_DEBUG")}  # the kernel's own inline
    env["OMP_NUM_THREADS"] = "1"
    client = nbclient.NotebookClient(nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp)}})
    client.execute(env=env)
    out = os.environ.get("TIERS_NOTEBOOK_OUT")  # keep the executed notebook (for the screenshots in docs/)
    if out:
        nbformat.write(nb, out)
    return {c.metadata["name"]: c.outputs for c in nb.cells}


def _kinds(outputs) -> list[str]:
    return [o.output_type for o in outputs]


def _images(outputs) -> list:
    return [o for o in outputs if "image/png" in o.get("data", {})]


def _texts(outputs) -> str:
    """All the text a reader sees in these outputs: streams, plain-text data and error lines."""
    parts = []
    for o in outputs:
        if o.output_type == "stream":
            parts.append(o.text)
        elif o.output_type == "error":
            parts += o.traceback
        else:
            parts.append(o.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def _stale_bar(text: str) -> bool:
    "A frozen frame of a text progress bar, or the carriage returns that drew one."
    return "\r" in text or bool(re.search(r"\d+%\||it/s|\|\s*\d+/\d+ \[", text))


def test_every_plot_is_one_image_and_nothing_is_echoed(executed):
    from PIL import Image

    for name in PLOTS:
        outs = executed[name]
        imgs = _images(outs)
        assert len(imgs) == 1, (name, _kinds(outs))
        png = Image.open(io.BytesIO(base64.b64decode(imgs[0].data["image/png"])))
        assert png.size[0] > 100 and png.size[1] > 100, (name, png.size)
        # nothing else but lr_find's suggestions (its return value, as in fastai); no "<Axes ...>", no list of axes
        echoed = [o for o in outs if o.output_type == "execute_result"]
        if name == "lr_find":
            assert len(echoed) == 1 and echoed[0].data["text/plain"].startswith("SuggestedLRs("), echoed
            assert "image/png" not in echoed[0].data
        else:
            assert echoed == [], (name, echoed)
        assert "<Axes" not in _texts(outs) and "<Figure" not in _texts(outs).replace(imgs[0].data["text/plain"], "")
        assert not _stale_bar(_texts(outs)), (name, _texts(outs))


def test_lr_find_leaves_no_bar(executed):
    outs = executed["lr_find"]
    html = "".join(o.get("data", {}).get("text/html", "") for o in outs)
    assert "<progress" not in html and "epoch" not in _texts(outs), outs


def test_fit_is_one_html_output_in_its_final_state(executed):
    outs = executed["fit"]
    assert _kinds(outs) == ["display_data"], outs  # bars and table: one output, updated in place
    data = outs[0].data
    html, text = data["text/html"], data["text/plain"]
    # the fit bar, complete, above the metrics table; the pass bar is gone
    assert html.count("<progress") == 1 and 'value="3" max="3"' in html, html
    assert "<table" in html and html.count("<tr>") == 4 and "<th style=\"text-align:left\">accuracy</th>" in html
    assert text.splitlines()[0].startswith("epoch 3/3") and "train_loss" in text
    assert not _stale_bar(text) and "loss 0." not in text


def test_tables_are_html(executed):
    for name in ("tabular", "text"):
        outs = executed[name]
        assert _kinds(outs) == ["display_data"], (name, outs)
        html = outs[0].data["text/html"]
        assert "<table" in html and "dataframe" in html, (name, html[:300])
        assert outs[0].data["text/plain"].strip(), name  # a readable text form for front ends without HTML
    assert "salary" in executed["tabular"][0].data["text/html"]
    assert "xxbos" in executed["text"][0].data["text/html"]
    assert "category" in executed["text"][0].data["text/html"]


def test_reports_and_reprs_read_well(executed):
    report = executed["report"]
    assert _kinds(report) == ["stream"] and "precision" in report[0].text, report  # printed once, not echoed
    summary = executed["summary"]
    assert _kinds(summary) == ["execute_result"], summary
    text = summary[0].data["text/plain"]
    assert not text.startswith(("'", '"')) and "\\n" not in text and len(text.splitlines()) > 5, text
    assert "Total params" in text or "params" in text.lower()
    dblock = executed["dblock_summary"]
    assert [o.output_type for o in dblock] == ["stream"] and "Final sample" in dblock[0].text, dblock
    lst = executed["L"]
    assert _kinds(lst) == ["execute_result"] and lst[0].data["text/plain"].startswith("(#100) [0, 1, 2"), lst


def test_interrupt_is_one_line_and_the_next_fit_has_its_own_output(executed):
    outs = executed["interrupted"]
    errors = [o for o in outs if o.output_type == "error"]
    assert len(errors) == 1 and errors[0].ename == "KeyboardInterrupt", outs
    assert len(errors[0].traceback) == 1, errors[0].traceback  # one line, no 40-frame traceback
    assert errors[0].traceback[0] == ("interrupted at epoch 2, batch 3: the model holds the weights of the last "
                                      "completed step")
    shown = [o for o in outs if o.output_type == "display_data"]
    assert len(shown) == 1, outs
    # the interrupted fit's output keeps its final state (where it stopped, the first epoch's row), not a frozen frame
    assert "interrupted at epoch 2, batch 3" in shown[0].data["text/plain"]
    assert shown[0].data["text/html"].count("<tr>") == 2 and "<progress" in shown[0].data["text/html"]
    nxt = executed["next_fit"]
    assert _kinds(nxt) == ["display_data"], nxt
    assert nxt[0].data["text/plain"].startswith("epoch 1/1") and nxt[0].data["text/html"].count("<tr>") == 2
    assert not _stale_bar(_texts(outs)) and not _stale_bar(_texts(nxt))


def test_a_fit_stopped_by_an_error_keeps_where_it_stopped(executed):
    outs = executed["error"]
    assert [o.output_type for o in outs] == ["display_data", "error"], outs
    assert outs[1].ename == "ValueError" and len(outs[1].traceback) > 1  # a real bug keeps its traceback
    text = outs[0].data["text/plain"]
    # finished when the cell ended: no frozen frame of a running bar in the saved notebook
    assert text.startswith("stopped by an error at epoch 1, batch 2") and not _stale_bar(text), text
