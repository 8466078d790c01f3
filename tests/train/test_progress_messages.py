"""Callback messages through `learn.logger` while ProgressCallback owns it (AUDIT B1): a string prints as one line
("Better model found at epoch 0 ...") -- on a terminal on its own line (not on the bar's, not as a table row of
one-letter cells), on a plain stream as a line, in a notebook under the HTML table -- while the recorder's lists
still append table rows."""

import io
import os

import pytest

from tiers.train import (
    Callback,
    EarlyStoppingCallback,
    SaveModelCallback,
    accuracy,
)


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def _fit_with_trackers(learn) -> None:
    # SaveModel: "Better model found at epoch 0 ..." (epoch 0 always improves); EarlyStopping with a min_delta no
    # epoch can reach after the first: "No improvement since epoch 0: early stopping" at epoch 1.
    learn.fit(4, 1e-2, cbs=[SaveModelCallback(monitor="accuracy"),
                            EarlyStoppingCallback(monitor="valid_loss", min_delta=10.0, patience=1)])


def _screen_lines(text: str) -> list[str]:
    # each line as a terminal shows it once its carriage returns are replayed
    lines = []
    for raw in text.split("\n"):
        screen = ""
        for seg in raw.split("\r"):
            screen = seg + screen[len(seg):]
        lines.append(screen.rstrip())
    return lines


def _check_lines(lines: list[str]) -> None:
    lines = [ln for ln in lines if ln.strip()]
    assert lines[0].split() == ["epoch", "train_loss", "valid_loss", "accuracy", "time"], lines
    better = [ln for ln in lines if ln.startswith("Better model found at epoch 0 with accuracy value: ")]
    assert len(better) == 1, lines
    assert "No improvement since epoch 0: early stopping" in lines, lines
    rows = [ln for ln in lines[1:] if ln.split()[0].isdigit()]
    assert [r.split()[0] for r in rows] == ["0", "1"], lines  # the early stop after epoch 1
    # nothing garbled: no line of single characters spread as cells ("B  e  t  t  e")
    assert not any(ln.split()[:3] == ["B", "e", "t"] or ln.split()[:3] == ["N", "o", "i"] for ln in lines), lines
    assert lines.index(better[0]) == lines.index(rows[0]) + 1  # the message follows the epoch's row


def test_messages_on_a_terminal_get_their_own_line(tmp_path, monkeypatch, progress_learner):
    monkeypatch.setenv("COLUMNS", "100")
    out = _TTY()
    learn = progress_learner(out, metrics=accuracy, path=tmp_path)
    _fit_with_trackers(learn)
    text = out.getvalue()
    assert "it/s" in text  # the bar was drawn on this stream too
    lines = _screen_lines(text)
    _check_lines(lines)
    assert not any("epoch " in ln and "|" in ln for ln in lines if "Better" in ln or "No improvement" in ln)


def test_messages_on_a_plain_stream_are_plain_lines(tmp_path, progress_learner):
    out = io.StringIO()
    learn = progress_learner(out, metrics=accuracy, path=tmp_path)
    _fit_with_trackers(learn)
    text = out.getvalue()
    assert "\r" not in text
    _check_lines(text.splitlines())


class _Says(Callback):
    order = 70  # after the recorder's row

    def after_epoch(self) -> None:
        self.learn.logger("hello from a callback")


def test_a_user_callbacks_message_is_a_line_and_rows_stay_rows(tmp_path, progress_learner):
    out = io.StringIO()
    learn = progress_learner(out, metrics=accuracy, path=tmp_path)
    learn.fit(2, 1e-2, cbs=_Says())
    lines = out.getvalue().splitlines()
    assert lines[1].split()[0] == "0" and lines[2] == "hello from a callback"
    assert lines[3].split()[0] == "1" and lines[4] == "hello from a callback"
    rows = learn.progress._st.rows
    assert [r[0] for r in rows] == ["0", "1"] and all(len(r) == 5 for r in rows)


@pytest.mark.slow
def test_messages_in_a_notebook_print_under_the_table(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    src = f"""\
import torch, torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from tiers.data import DataLoaders
from tiers.train import Learner, accuracy, SaveModelCallback, EarlyStoppingCallback
torch.manual_seed(0); torch.set_num_threads(1)
x = torch.randn(96, 4); y = (x[:, 0] > 0).long()
dls = DataLoaders(DataLoader(TensorDataset(x[:64], y[:64]), batch_size=16),
                  DataLoader(TensorDataset(x[64:], y[64:]), batch_size=16))
learn = Learner(dls, nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), loss_func=F.cross_entropy,
                metrics=accuracy, path={str(tmp_path)!r})
learn.fit(4, 1e-2, cbs=[SaveModelCallback(monitor='accuracy'),
                        EarlyStoppingCallback(monitor='valid_loss', min_delta=10.0, patience=1)])"""
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(src))
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "TIERS_DEBUG")}
    env["OMP_NUM_THREADS"] = "1"
    nbclient.NotebookClient(nb, timeout=180, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute(env=env)
    outs = nb.cells[0].outputs
    tables = [o for o in outs if o.output_type == "display_data"]
    assert len(tables) == 1, outs
    html = tables[0].data["text/html"]
    assert html.count("<tr>") == 3, html  # the header and epochs 0 and 1: no row of one-letter cells
    assert "<td>B</td>" not in html and "Better" not in html
    streams = "".join(o.text for o in outs if o.output_type == "stream" and o.name == "stdout")
    lines = streams.splitlines()
    assert len([ln for ln in lines if ln.startswith("Better model found at epoch 0 with accuracy value: ")]) == 1
    assert "No improvement since epoch 0: early stopping" in lines
    assert outs.index(tables[0]) < next(i for i, o in enumerate(outs) if o.output_type == "stream")
