"""`ProgressCallback` on a terminal and in a notebook's output: what it draws, what it leaves behind."""

import io
import re

import pytest

from tiers.train import accuracy
from tiers.train.callbacks.progress import _State, notebook_view, terminal_line


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def _frames(text: str) -> list[str]:
    return [f for line in text.split("\n") for f in line.split("\r") if f.strip()]


def _state(width_case: str = "train") -> _State:
    st = _State("fit", 5, 0, 32, 8)
    st.epoch, st.label, st.n, st.total, st.loss = 1, "train", 13, 32, 0.71234
    st.t0 -= 20
    st.p0 -= 3
    return st


@pytest.mark.parametrize("width", [200, 120, 80, 60, 45, 30, 20, 12])
def test_terminal_line_fits_the_width_and_drops_the_least_useful_parts_first(width):
    st = _state()
    line = terminal_line(st, width, now=st.p0 + 3)
    assert len(line) <= width - 3  # never the last column (some terminals wrap there), room for an echoed ^C
    if width >= 30:
        assert line.startswith("epoch 2/5 ") and "13/32" in line and "train" in line
    if width >= 120:
        assert "loss 0.7123" in line and "it/s" in line and "fit 00:20<" in line and "00:03<" in line
    if width == 60:
        # at 60 columns: the pass's bar, count and rate and the fit's elapsed/ETA; the loss and pass times go first
        assert re.fullmatch(r"epoch 2/5 train \|[\u2588-\u258f ]{8,24}\| 13/32 \d+\.\dit/s fit 00:20<00:\d\d",
                            line), line


def test_fit_eta_counts_batches_of_every_epoch():
    st = _State("fit", 4, 0, 30, 10)
    st.epoch, st.validating, st.n, st.total = 1, True, 5, 10  # epoch 2, half-way through validation
    assert st.fit_frac() == pytest.approx((40 + 30 + 5) / 160)


def test_bar_draws_on_a_terminal_and_wipes_its_line(monkeypatch, progress_learner):
    monkeypatch.setenv("COLUMNS", "100")
    out = _TTY()
    learn = progress_learner(out, metrics=[accuracy])
    learn.fit(2)
    text = out.getvalue()
    frames = _frames(text)
    bars = [f for f in frames if f.startswith("epoch ")]
    assert any(f.startswith("epoch 1/2 train |") and "4/4" in f for f in bars)
    assert any(f.startswith("epoch 2/2 valid |") and "2/2" in f for f in bars)
    assert any("it/s" in f for f in bars)  # the rate
    assert max(len(f) for f in bars) <= 97
    # the validation pass never shows the training loss
    assert all("loss" not in f for f in bars if " valid " in f)
    assert any("loss " in f for f in bars if " train " in f)
    # each table row starts on a wiped line, and nothing of the bar is left at the end
    rows = [ln.rsplit("\r", 1)[-1] for ln in text.split("\n")]
    assert rows[0].split() == ["epoch", "train_loss", "valid_loss", "accuracy", "time"]
    assert [r.split()[0] for r in rows[1:3]] == ["0", "1"]
    assert text.endswith("\n") and text.split("\n")[-1] == ""
    last = text.split("\n")[-2].split("\r")
    assert "epoch 2/2" not in last[-1] and not text.rstrip("\n").endswith("|")
    assert learn.progress.bar is None


def test_shorter_redraw_blanks_what_the_longer_one_left(progress_learner):
    out = _TTY()
    learn = progress_learner(out)
    learn.fit(2)
    screen = ""
    for seg in out.getvalue().split("\n")[0].split("\r"):  # replay the carriage returns as a terminal does
        screen = seg + screen[len(seg):]
        assert screen.rstrip() == seg.rstrip(), (seg, screen)  # nothing of a longer earlier frame shows


def test_no_bar_when_not_a_terminal(progress_learner):
    out = io.StringIO()
    learn = progress_learner(out)
    learn.fit(2)
    assert "\r" not in out.getvalue() and "it/s" not in out.getvalue()
    assert [ln.split()[0] for ln in out.getvalue().splitlines()] == ["epoch", "0", "1"]


def test_lr_find_leaves_nothing_on_the_terminal(progress_learner):
    out = _TTY()
    learn = progress_learner(out)
    learn.lr_find(num_it=12, show_plot=False)
    text = out.getvalue()
    assert any(f.startswith("lr_find |") for f in _frames(text)), text
    screen = ""
    for seg in text.split("\r"):
        screen = seg + screen[len(seg):]
    assert "\n" not in text and screen.strip() == ""  # no row, and the bar's line wiped


def test_notebook_view_final_states():
    st = _state()
    view = notebook_view(st)
    assert view["text/html"].count("<progress") == 2 and "loss 0.7123" in view["text/plain"]
    st.names, st.rows = ["epoch", "train_loss", "time"], [["0", "0.5", "00:01"]]
    st.end, st.end_line = "done", "epoch 5/5"
    view = notebook_view(st)
    assert view["text/html"].count("<progress") == 1 and 'value="5" max="5"' in view["text/html"]
    assert view["text/plain"].splitlines()[0].startswith("epoch 5/5 \u00b7 ") and "train_loss" in view["text/plain"]
    st.end, st.end_line = "interrupted", "interrupted at epoch 2, batch 13"
    assert 'value="1" max="5"' in notebook_view(st)["text/html"]
    search = _State("search", 1, 0, 32, 8)
    search.end = "stopped"
    assert notebook_view(search) == {"text/plain": ""}  # lr_find leaves nothing in a saved notebook
    table_only = _state()
    table_only.bars, table_only.names, table_only.rows = False, ["epoch", "time"], [["0", "00:01"]]
    view = notebook_view(table_only)  # no_bar() in a notebook: the HTML table alone
    assert "<progress" not in view["text/html"] and "<table" in view["text/html"]
    assert view["text/plain"].splitlines()[0].split() == ["epoch", "time"]


def test_table_rows_fit_a_narrow_terminal(monkeypatch, progress_learner):
    from tiers.train import error_rate

    monkeypatch.setenv("COLUMNS", "56")
    out = _TTY()
    learn = progress_learner(out, metrics=[accuracy, error_rate])
    learn.fit(2)
    lines = [ln.rsplit("\r", 1)[-1] for ln in out.getvalue().split("\n") if ln.rsplit("\r", 1)[-1]]
    assert lines[0] == "epoch train_loss valid_loss accuracy error_rate time"  # one space: two would not fit
    assert len(lines) == 3 and max(map(len, lines)) <= 55
    assert [ln.index("0.") for ln in lines[1:]] == [lines[0].index("train_loss")] * 2  # columns line up
