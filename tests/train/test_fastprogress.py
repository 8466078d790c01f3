"""AUDIT B9 (part): fastprogress's `progress_bar` and `master_bar`, as fastai notebooks use them unimported."""

import io
import re

import pytest


class TTY(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self):
        return True


def _screen(text: str) -> list[str]:
    """What a terminal shows for `text`: `\r` returns to the line's start and later characters overwrite."""
    shown = []
    for raw in text.split("\n"):
        line: list[str] = []
        for seg in raw.split("\r"):
            for j, ch in enumerate(seg):
                if j < len(line):
                    line[j] = ch
                else:
                    line.append(ch)
        shown.append("".join(line).rstrip())
    return shown


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # anything but tab and newline


def test_star_import_gives_both_names():
    ns: dict = {}
    exec("from tiers.train.all import *", ns)
    assert ns["progress_bar"].__module__ == "tiers.train.fastprogress"
    assert "master_bar" in ns  # every application's `all` starts from tiers.train.all (tests/train sees no app)


def test_progress_bar_yields_every_item_sized_and_unsized():
    from tiers.train import progress_bar

    assert list(progress_bar(range(10), file=io.StringIO())) == list(range(10))
    gen = (i * i for i in range(7))
    pb = progress_bar(gen, file=io.StringIO())
    assert pb.total is None and list(pb) == [i * i for i in range(7)] and pb.n == 7
    with pytest.raises(TypeError, match="total="):
        len(pb)
    assert len(progress_bar(range(4))) == 4


def test_plain_stream_gets_no_control_characters():
    from tiers.train import master_bar, progress_bar

    log = io.StringIO()
    for _ in progress_bar(range(10), file=log, comment="loading"):
        pass
    mb = master_bar(range(3), file=log)
    seen = []
    for e in mb:
        for b in progress_bar(list("abcd"), parent=mb):
            seen.append((e, b))
        mb.write(f"epoch {e} done")
    mb.write(["epoch", "loss"])
    text = log.getvalue()
    assert not _CONTROL.search(text), repr(text)
    lines = text.splitlines()
    assert lines[0].startswith("100% |") and "10/10" in lines[0] and lines[0].endswith("loading")
    assert lines[1:4] == ["epoch 0 done", "epoch 1 done", "epoch 2 done"]
    assert "3/3" in lines[4] and lines[5] == "epoch  loss" and len(lines) == 6
    assert seen == [(e, b) for e in range(3) for b in "abcd"]
    assert mb.lines[-1] == "epoch  loss"


def test_tty_stream_redraws_in_place_and_wipes():
    from tiers.train import master_bar, progress_bar

    out = TTY()
    for _ in progress_bar(range(5), file=out, throttle=0):
        pass
    text = out.getvalue()
    assert text.count("\r") >= 6  # drawn at 0..5
    shown = _screen(text)
    assert len(shown) == 2 and shown[0].startswith("100% |") and "5/5" in shown[0]  # the kept final line (leave)

    out = TTY()
    mb = master_bar(range(2), file=out)
    for e in mb:
        for _ in progress_bar(range(3), parent=mb, throttle=0):
            pass
        mb.write(f"done {e}")
    text = out.getvalue()
    # a child shares its master's line: "  0% |...| 0/2 ... | 33% |...| 1/3 ..."
    assert re.search(r"0/2 \[[^\]]*\] \| +\d+% \|", text)
    # each write wipes the line first and prints its own line above the bar; the end wipes the line
    assert _screen(text) == ["done 0", "done 1", ""]

    out = TTY()
    for _ in progress_bar(range(5), file=out, throttle=0, leave=False):
        pass
    assert _screen(out.getvalue()) == [""]


def test_display_false_and_break_finish_cleanly():
    from tiers.train import progress_bar

    out = io.StringIO()
    assert list(progress_bar(range(3), display=False, file=out)) == [0, 1, 2] and out.getvalue() == ""
    out = TTY()
    for i in progress_bar(range(100), file=out, leave=False):
        if i == 4:
            break
    assert _screen(out.getvalue()) == [""]  # the line is wiped even after a break
