"""`ProgressCallback`: how a fit shows its progress in a terminal, in a Jupyter notebook and in a log file.

Two bars: the fit's (epochs, overall elapsed time and ETA) and the current pass's (batches, rate, the pass's elapsed
time and ETA, and the smoothed loss on training passes only). Where they go depends on the output:

* a terminal (the stream is a TTY): both bars share ONE line, redrawn in place with a carriage return and fitted to
  the terminal's width at every draw (the least useful parts are dropped first on a narrow terminal); the metrics
  table's rows are printed above it, and the line is wiped when the fit ends, so nothing stale stays on screen;
  while the bar is drawn, whatever else goes to a terminal's `sys.stdout`/`sys.stderr` (a callback's `print`, a
  warning) is written on its own lines above the bar (the bar is wiped, the text written, the bar redrawn), and the
  streams are put back as they were when the fit ends;
* a Jupyter notebook: one HTML output (two `<progress>` bars and the metrics table) updated in place through a
  display handle, so it needs no ipywidgets and a saved notebook holds only its final state: the completed fit bar
  and the table (`lr_find` and validation-only passes leave nothing);
* anything else (a pipe, a log file): no bar; each epoch's row of the table is printed as plain text.

    epoch  train_loss  valid_loss  accuracy  time
    0      0.512345    0.401234    0.880000  00:01

Ctrl-C during a fit stops it at the end of the current batch, so the weights are never half-updated, and prints one
line, "interrupted at epoch e, batch b: the model holds the weights of the last completed step", instead of a
traceback (a second Ctrl-C stops at once). The exception is a plain `KeyboardInterrupt` (its `fit_interrupted`
attribute says where: epoch, batch, phase), so a script still ends as interrupted; set the environment variable
`TIERS_DEBUG=1` to see its full traceback.
"""

from __future__ import annotations

# `_signal` is what `signal` wraps: the wrappers convert handlers to and from enums (an exception per function
# handler), about 8 us per fit; the handler objects are the same (`_signal.default_int_handler is
# signal.default_int_handler`).
import _signal  # type: ignore[import-not-found]  # typeshed has no stub for CPython's C module behind `signal`
import os
import shutil
import signal
import sys
import threading
import time
from html import escape
from typing import IO, Any

from tiers.data.show import in_notebook as _in_notebook
from tiers.train.callbacks.core import Callback
from tiers.train.callbacks.lr_finder import LRFinder

__all__ = ["ProgressCallback"]

_SIGINT = int(signal.SIGINT)
_BAR_MAX = 24  # widest text bar, in characters: wider bars only spread the same information


def _debug() -> bool:
    return os.environ.get("TIERS_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


def _one_line_hook(prev):
    def hook(etype, value, tb):
        if sys.excepthook is hook:
            sys.excepthook = prev  # one use: the process is ending anyway, or the user goes on at the prompt
        if getattr(value, "fit_interrupted", False) and not _debug():
            print(str(value), file=sys.stderr, flush=True)
            return
        prev(etype, value, tb)

    hook._tiers_fit_interrupted = True
    return hook


def _raise_interrupt(msg: str, where: dict[str, Any]) -> None:
    """Raise a plain `KeyboardInterrupt` saying where the fit stopped. Plain, not a subclass: CPython ends a script
    killed by an uncaught KeyboardInterrupt as if by SIGINT (exit status 130 in a shell, which stops a shell loop)
    only for that exact type. It shows as its one-line message: in IPython and Jupyter through
    `_render_traceback_`, in a plain Python process through `sys.excepthook` (chained, for this exception only)."""
    e = KeyboardInterrupt(msg)
    vars(e)["fit_interrupted"] = where  # {"epoch": ..., "batch": ..., "phase": ...}: what the message says, for programs
    if not _debug():
        vars(e)["_render_traceback_"] = lambda: [msg]
        if not getattr(sys.excepthook, "_tiers_fit_interrupted", False):
            sys.excepthook = _one_line_hook(sys.excepthook)
    raise e from None


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool | int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.6f}"
    if hasattr(v, "item") and getattr(v, "ndim", 1) == 0:
        return _fmt(v.item())
    return str(v)


def _clock(t: float | None) -> str:
    if t is None or t != t or t == float("inf"):
        return "?"
    m, sec = divmod(int(t), 60)
    h, m = divmod(m, 60)
    return f"{h:d}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


def _rate(n: int, elapsed: float) -> str:
    if not n or elapsed <= 0:
        return "?it/s"
    r = n / elapsed
    return f"{r:.1f}it/s" if r >= 1 else f"{1 / r:.2f}s/it"


def _eta(elapsed: float, frac: float) -> float | None:
    return elapsed * (1 - frac) / frac if frac > 0 else None


class _State:
    """What the bars show: a fresh object for every fit, so nothing carries over from an interrupted one."""

    __slots__ = ("mode", "t0", "n_epoch", "start_epoch", "epoch", "n_train", "n_valid", "label", "n", "total",
                 "p0", "loss", "validating", "rows", "names", "end", "end_line", "pending", "next", "bars",
                 "live", "widths", "sep", "blocks")
    mode: str
    t0: float
    n_epoch: int
    start_epoch: int
    epoch: int
    n_train: int | None
    n_valid: int | None
    label: str
    n: int
    total: int | None
    p0: float
    loss: float | None
    validating: bool
    rows: list[list[str]]
    names: list[str]
    end: str | None
    end_line: str
    pending: bool
    next: float
    bars: bool
    live: bool
    widths: list[int]
    sep: int
    blocks: list[list[int]]

    def __init__(self, mode: str, n_epoch: int, start_epoch: int, n_train: int | None, n_valid: int | None) -> None:
        self.mode, self.n_epoch, self.start_epoch = mode, n_epoch, start_epoch
        self.n_train, self.n_valid = n_train, n_valid
        self.t0 = self.p0 = time.monotonic()
        self.epoch, self.label, self.n, self.total, self.loss, self.validating = start_epoch, "", 0, None, None, False
        self.rows = []
        self.names = []
        self.end = None  # how the fit ended ("done", "stopped", "interrupted"); None while it runs
        self.end_line = ""
        self.pending = False  # Ctrl-C seen: stop at the end of the current batch
        self.next = 0.0  # earliest time of the next redraw
        self.bars = True  # False: a notebook output with the table only
        self.live = False  # a view with bars: after_batch may draw (set by ProgressCallback.before_fit)
        self.widths = []  # the text table's column widths, set by its first row
        self.sep = 2
        self.blocks = []  # the text table's column groups on a terminal too narrow for all of them (see _table_blocks)

    def fit_frac(self) -> float:
        """Fraction of the whole fit done, counted in batches when the loaders have a length."""
        epochs = max(self.n_epoch - self.start_epoch, 1)
        done = self.epoch - self.start_epoch
        per_epoch = (self.n_train or 0) + (self.n_valid or 0)
        if per_epoch and self.total:
            within = (self.n_train or 0) * self.validating + self.n
            return min((done * per_epoch + within) / (epochs * per_epoch), 1.0)
        return min(done / epochs, 1.0)


def _fit_parts(st: _State, now: float) -> tuple[str, str]:
    elapsed = now - st.t0
    return f"epoch {st.epoch + 1}/{st.n_epoch}", f"{_clock(elapsed)}<{_clock(_eta(elapsed, st.fit_frac()))}"


def _pass_parts(st: _State, now: float) -> dict[str, str]:
    elapsed = now - st.p0
    return {"count": f"{st.n}/{st.total}" if st.total else f"{st.n}", "rate": _rate(st.n, elapsed),
            "time": f"{_clock(elapsed)}<{_clock(_eta(elapsed, st.n / st.total) if st.total else None)}",
            "loss": "" if st.loss is None else f"loss {st.loss:.4f}"}


def _text_bar(frac: float, width: int, fill: str) -> str:
    if fill == "#":
        k = int(frac * width)
        return "#" * k + " " * (width - k)
    full, part = divmod(int(frac * width * 8), 8)
    bar = "\u2588" * full + (" \u258f\u258e\u258d\u258c\u258b\u258a\u2589"[part] if part and full < width else "")
    return bar + " " * (width - len(bar))


def terminal_line(st: _State, width: int, fill: str = "\u2588", now: float | None = None) -> str:
    """The one line a terminal shows for `st`, at most `width - 3` characters (writing the last column makes some
    terminals wrap, and the `^C` a terminal echoes must fit after it):

        epoch 2/5 train |█████▊         | 13/32 4.3it/s 00:03<00:04 loss 0.7123 fit 00:20<00:55

    the fit's epoch, the pass's label, bar, count, rate, elapsed<remaining and smoothed loss, then the whole fit's
    elapsed<remaining. When the line does not fit, the least useful parts go first (the pass's times, the loss, the
    rate, the fit's times) until the bar has 8 cells; narrower still, the bar shrinks (to 4 cells, else it goes)."""
    now = time.monotonic() if now is None else now
    limit = max(width - 3, 8)
    p = _pass_parts(st, now)
    head, fit_time = _fit_parts(st, now) if st.mode == "fit" else ("", "")
    parts = [("head", head), ("label", st.label), ("bar", "|"), ("count", p["count"]), ("rate", p["rate"]),
             ("time", p["time"]), ("loss", p["loss"]), ("fit_time", fit_time and f"fit {fit_time}")]
    parts = [(k, v) for k, v in parts if v and (k != "bar" or st.total)]
    drop = ["time", "loss", "rate", "fit_time"]
    while True:
        fixed = sum(len(v) + 1 for k, v in parts if k != "bar") - 1
        has_bar = any(k == "bar" for k, _ in parts)
        room = limit - fixed - 3  # a bar takes its cells, its two "|" and a space
        if not has_bar or room >= 8 or not drop:
            break
        d = drop.pop(0)
        parts = [(k, v) for k, v in parts if k != d]
    if has_bar and st.total:  # the bar part is only there when the pass has a length
        bar = "|" + _text_bar(min(st.n / st.total, 1.0), min(room, _BAR_MAX), fill) + "|" if room >= 4 else ""
        parts = [(k, bar if k == "bar" else v) for k, v in parts if k != "bar" or bar]
    return " ".join(v for _, v in parts)[:limit]


def _progress_html(value: float, maximum: float, text: str) -> str:
    return (f'<div style="font-family:monospace;line-height:1.7"><progress value="{value:g}" max="{maximum:g}" '
            f'style="width:300px;height:12px;vertical-align:middle"></progress>&nbsp;&nbsp;{escape(text)}</div>')


def _html_table(names: list[str], rows: list[list[str]]) -> str:
    head = "".join(f'<th style="text-align:left">{escape(n)}</th>' for n in names)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table border="1" class="dataframe"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _table_widths(names: list[str], cells: list[str], width: int | None) -> tuple[list[int], int]:
    """Column widths and separator of the text table, from its header and first row: two spaces between columns, one
    when that is too wide for the terminal."""
    widths = [max(len(n), len(c)) for n, c in zip(names, cells)]
    sep = 2 if width is None or sum(widths) + 2 * (len(widths) - 1) < width else 1
    return widths, sep


def _row_text(cells: list[str], widths: list[int], sep: int = 2) -> str:
    return (" " * sep).join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()


def _table_blocks(widths: list[int], sep: int, width: int | None) -> list[list[int]]:
    """The column groups the text table is printed in: all its columns when they fit in `width` (None: any width),
    else groups that each fit, every one led by the first column (the epoch), so a narrow terminal shows each row as
    a few short lines instead of one line it wraps mid-word (as tabular `show_batch` splits its columns)."""
    every = list(range(len(widths)))
    if width is None or len(widths) < 2 or sum(widths) + sep * (len(widths) - 1) < width:
        return [every]
    blocks, cur, used = [], [0], widths[0]
    for i in every[1:]:
        if len(cur) > 1 and used + sep + widths[i] >= width:
            blocks.append(cur)
            cur, used = [0], widths[0]
        cur.append(i)
        used += sep + widths[i]
    return [*blocks, cur]


def _block_text(cells: list[str], widths: list[int], sep: int, blocks: list[list[int]]) -> str:
    return "\n".join(_row_text([cells[i] for i in b], [widths[i] for i in b], sep) for b in blocks)


def notebook_view(st: _State, now: float | None = None) -> dict[str, str]:
    """The notebook output for `st`: HTML (the bars, then the metrics table) and its plain-text form, for front ends
    and saved notebooks without HTML. Once the fit has ended only its final state is left: the fit bar with how it
    ended and the table; `lr_find` and validation-only passes leave an empty output."""
    now = time.monotonic() if now is None else now
    html, text = [], []
    if not st.bars:
        pass
    elif st.end is not None:
        if st.mode != "fit":
            return {"text/plain": ""}
        epochs = max(st.n_epoch - st.start_epoch, 1)
        done = epochs if st.end == "done" else st.epoch - st.start_epoch
        line = f"{st.end_line} \u00b7 {_clock(now - st.t0)}"
        html.append(_progress_html(done, epochs, line))
        text.append(line)
    else:
        p = _pass_parts(st, now)
        if st.mode == "fit":
            head, fit_time = _fit_parts(st, now)
            html.append(_progress_html(round(st.fit_frac(), 4), 1, f"{head} \u00b7 {fit_time}"))
            text.append(f"{head} {fit_time}")
        pass_line = " \u00b7 ".join(x for x in (st.label, p["count"], p["rate"], p["time"], p["loss"]) if x)
        html.append(_progress_html(st.n, st.total or max(st.n, 1), pass_line))
        text.append(pass_line)
    if st.rows:
        html.append(_html_table(st.names, st.rows))
        widths = st.widths or _table_widths(st.names, st.rows[0], None)[0]
        text += [_row_text(st.names, widths, st.sep)] + [_row_text(r, widths, st.sep) for r in st.rows]
    return {"text/html": "".join(html), "text/plain": "\n".join(text)}


def _isatty(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


class _AboveBar:
    """Stands in for `sys.stdout`/`sys.stderr` while a bar is drawn on the terminal: each write wipes the bar's line
    first, and once the text ends a line the bar is redrawn under it (tqdm.write's way), so a `print` or a warning
    from a callback gets its own line instead of being glued to a bar frame that then stays in the scrollback. Every
    other attribute is the real stream's. It only costs anything when something is written."""

    def __init__(self, raw: IO[str], cb: ProgressCallback, thread: int) -> None:
        self._raw, self._cb, self._thread = raw, cb, thread

    def write(self, s: str) -> int:
        """Write `s` above the bar (the bar is redrawn once a line is complete)."""
        cb, raw = self._cb, self._raw
        if threading.get_ident() != self._thread:
            return raw.write(s)  # another thread: the bar belongs to the fit's, leave its line alone
        if not cb._redirect_live():
            # the fit ended by an error (no after_fit ran; e.g. this is its traceback): wipe its bar, put the real
            # streams back, and write
            cb._finish_stale()
            return raw.write(s)
        if not s:
            return 0
        cb._term_clear()
        n = raw.write(s)
        raw.flush()  # before the bar (on the other stream, maybe) is redrawn under it
        cb._partial = not s.endswith("\n")
        if not cb._partial:
            cb._redraw()
        return n

    def writelines(self, lines: Any) -> None:
        """Write each of `lines` above the bar."""
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Flush the real stream."""
        self._raw.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def _shell() -> Any:
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    return get() if get is not None else None


def _msg_count(shell: Any) -> int | None:
    """How many messages the kernel's session has made so far (each output, of any kind, is one): None outside a
    Jupyter kernel."""
    count = getattr(getattr(getattr(shell, "display_pub", None), "session", None), "message_count", None)
    return count if isinstance(count, int) else None


_CELL_START: dict[int, int | None] = {}  # id(shell) -> the session's message count when its running cell started


def _track_cells(shell: Any) -> None:
    """Note the session's message count at the start of each cell (once per shell), so a bar's display can tell
    whether it is the cell's only output (then it may be cleared, leaving no blank output; see `_nb_clear`)."""
    events = getattr(shell, "events", None)
    if events is None or id(shell) in _CELL_START or _msg_count(shell) is None:
        return
    key = id(shell)
    _CELL_START[key] = None  # not known for the cell running now

    def pre_run_cell(*args: Any) -> None:
        _CELL_START[key] = _msg_count(shell)

    events.register("pre_run_cell", pre_run_cell)


def _len(dl: Any) -> int | None:
    try:
        return len(dl)
    except TypeError:
        return None


class ProgressCallback(Callback):
    """Default callback (order 60): the fit and pass bars, the per-epoch metrics table, and Ctrl-C handling.

    `file` receives bar and table (default: the bar on stderr, the table on stdout; in a notebook, an HTML output);
    `show_bar=None` draws the bar on a terminal or in a notebook only, True forces it (a stream that is not a
    terminal gets terminal lines), False hides it; `throttle` is the minimum number of seconds between two redraws.
    """

    order = 60
    remove_on_fetch = True

    def __init__(self, file: IO[str] | None = None, show_bar: bool | None = None, throttle: float = 0.1) -> None:
        self.file, self.show_bar, self.throttle = file, show_bar, throttle
        self._st: _State | None = None
        self._view: str | None = None  # "terminal", "notebook" or None (no bar)
        self._handle: Any = None
        self._drawn = self._drawn_max = 0  # length of the terminal line on screen (0: none), the longest since wiped
        self._old_logger: Any = None
        self._old_sigint: Any = None
        self._raw: tuple[Any, Any] | None = None  # (sys.stdout, sys.stderr) as they were, while writes go above the bar
        self._partial = False  # a write above the bar has not ended its line yet: no redraw until it does
        self._retired: tuple[Any, Any] | None = None
        self._nb_alone = False  # this fit's notebook display is so far its cell's only output (it may be cleared)
        self._nb_count: int | None = None  # the session's message count after this fit's last display message
        if _in_notebook():  # a Learner is usually made in a cell before its lr_find's
            _track_cells(_shell())

    # ---- where things go ----------------------------------------------------------------------------------------
    def _bar_stream(self) -> IO[str]:
        if self.file is not None:
            return self.file
        return self._raw[1] if self._raw is not None else sys.stderr

    def _table_stream(self) -> IO[str]:
        if self.file is not None:
            return self.file
        return self._raw[0] if self._raw is not None else sys.stdout

    def _choose_view(self) -> str | None:
        if self.file is None and _in_notebook():
            return "notebook"  # the table is HTML there even without bars (`show_bar=False`, `no_bar()`)
        if self.show_bar is False:
            return None
        if self.show_bar:
            return "terminal"
        return "terminal" if _isatty(self._bar_stream()) else None

    @property
    def bar(self) -> _State | None:
        """The running fit's progress state (None between fits)."""
        return self._st if self._st is not None and self._st.end is None else None

    # ---- events ---------------------------------------------------------------------------------------------------
    def before_fit(self) -> None:
        """Start fresh bars (never the ones an interrupted fit left), route the table, arm Ctrl-C handling."""
        self._finish_stale()
        learn = self.learn
        mode = "search" if any(isinstance(c, LRFinder) for c in learn.cbs) else \
            "eval" if getattr(learn, "validating", False) else "fit"
        self._view = view = self._choose_view()
        n_train = n_valid = None
        dls = getattr(learn, "dls", None)
        if view is not None and dls is not None:  # the loaders' lengths serve the bars only (the fit's fraction done)
            n_train = _len(getattr(dls, "train", None))
            try:
                n_valid = _len(dls.valid)
            except (AttributeError, IndexError):  # no validation loader: the fit trains only
                n_valid = None
        self._st = _State(mode, getattr(learn, "n_epoch", 1), getattr(learn, "_start_epoch", 0), n_train, n_valid)
        self._st.bars = self.show_bar is not False
        self._st.live = view is not None and self._st.bars  # whether after_batch may draw
        self._handle, self._drawn, self._drawn_max = None, 0, 0
        self._fill = "\u2588"
        if self._view == "terminal":
            enc = (getattr(self._bar_stream(), "encoding", None) or "utf-8").lower().replace("-", "")
            self._fill = "\u2588" if enc.startswith("utf") else "#"
        if learn.logger is print:
            self._old_logger = learn.logger
            learn.logger = self._write_row
        self._arm_sigint()
        self._redirect()
        self._watch_cell()

    def _watch_cell(self) -> None:
        """Under IPython, finish this fit's output when its cell ends, if the fit did not (an error stopped it): a
        saved notebook then shows where it stopped, not a frozen frame, and Ctrl-C is Python's own again at once.
        The hook removes itself after one cell."""
        ipython = sys.modules.get("IPython")
        get = getattr(ipython, "get_ipython", None)
        shell = get() if get is not None else None
        events = getattr(shell, "events", None)
        if events is None:
            return
        st = self._st

        def after_cell(*args: Any) -> None:
            try:
                events.unregister("post_run_cell", after_cell)
            except ValueError:
                pass
            if st is not None and self._st is st and st.end is None:
                self._finish_stale()

        events.register("post_run_cell", after_cell)

    def before_epoch(self) -> None:
        """Follow the epoch number."""
        if self._st is not None:
            self._st.epoch = self.learn.epoch

    def before_train(self) -> None:
        """Start the pass bar on the training pass."""
        self._start_pass("train" if self._st is None or self._st.mode != "search" else "lr_find", False)

    def before_validate(self) -> None:
        """Start the pass bar on the validation pass (without the training loss)."""
        self._start_pass("valid", True)

    def _start_pass(self, label: str, validating: bool) -> None:
        st = self._st
        if st is None:
            return
        st.label, st.validating, st.n, st.loss = label, validating, 0, None
        st.total = _len(self.learn.dl)
        if st.mode != "search":
            st.p0 = time.monotonic()
        else:  # lr_find: one bar over all its batches, whatever the epochs they fall in
            num_it = next((getattr(c, "num_it", None) for c in self.learn.cbs if hasattr(c, "num_it")), None)
            st.total = num_it or st.total
            st.n = getattr(self.learn, "train_iter", 0)
        self._draw(force=True)

    def after_batch(self) -> None:
        """Count the batch, redraw at most every `throttle` seconds; stop here if Ctrl-C was pressed."""
        st = self._st
        if st is None:
            return
        st.n += 1
        if st.pending:
            self._interrupt()
        if st.live:
            now = time.monotonic()
            if now >= st.next:
                if self.learn.training:
                    st.loss = _num(self.learn.smooth_loss)
                self._draw(now=now)

    def after_cancel_fit(self) -> None:
        """A callback stopped the fit (early stopping, lr_find's end): remembered for the final state."""
        if self._st is not None:
            self._st.end = "stopped"

    def after_fit(self) -> None:
        """Leave the final state (terminal: a wiped line; notebook: the completed bar and the table)."""
        st = self._st
        self._disarm_sigint()
        if st is not None:
            if st.end == "stopped":
                st.end_line = f"stopped at epoch {st.epoch + 1}/{st.n_epoch}"
            else:
                st.end, st.end_line = "done", f"epoch {st.n_epoch}/{st.n_epoch}"
            self._finish()
        self._unredirect()
        if self._old_logger is not None:
            self.learn.logger = self._old_logger
            self._old_logger = None
        if st is not None and st.pending:  # Ctrl-C after the last batch: the fit is complete, but the user asked to stop
            st.pending = False
            _raise_interrupt("interrupted after the last batch: the fit completed, the model holds its final weights",
                             {"epoch": st.epoch + 1, "batch": st.n, "phase": "end"})

    # ---- drawing --------------------------------------------------------------------------------------------------
    def _draw(self, force: bool = False, now: float | None = None) -> None:
        st, view = self._st, self._view
        if st is None or view is None:
            return
        now = time.monotonic() if now is None else now
        if not force and now < st.next:
            return
        if view == "notebook" and self._handle is None and st.mode != "fit" and now - st.t0 < 0.5:
            return  # a short lr_find or get_preds in a notebook: no output at all
        if view == "notebook" and not st.bars and not (force and st.rows):
            return  # bars hidden: the output is the table, drawn when a row comes
        st.next = now + self.throttle
        if view == "terminal":
            if self._partial:
                return  # a line written above the bar is not finished: drawing now would write over it
            self._term_write(terminal_line(st, self._width(), self._fill, now))
        else:
            self._nb_show(notebook_view(st, now))

    def _width(self) -> int:
        # asked at every draw (a few microseconds, at most 1/throttle times a second): follows a resized window
        stream = self._bar_stream()
        try:
            return os.get_terminal_size(stream.fileno()).columns
        except (AttributeError, ValueError, OSError):  # io.UnsupportedOperation is both of the last two
            return shutil.get_terminal_size((80, 24)).columns

    def _term_write(self, line: str) -> None:
        pad = " " * max(self._drawn - len(line), 0)  # blank what a longer previous line left
        self._write(self._bar_stream(), "\r" + line + pad + ("\r" + line if pad else ""))
        self._drawn = len(line)
        self._drawn_max = max(self._drawn_max, self._drawn)

    def _term_clear(self) -> None:
        if self._drawn:  # the longest line since the last wipe, and two more blanks: a `^C` the terminal echoed
            self._write(self._bar_stream(), "\r" + " " * (self._drawn_max + 2) + "\r")
            self._drawn = self._drawn_max = 0

    @staticmethod
    def _write(stream: IO[str], s: str) -> None:
        try:
            stream.write(s)
            stream.flush()
        except ValueError:  # the stream was closed under us: drawing is best effort
            pass

    def _nb_show(self, data: dict[str, str]) -> None:
        from IPython.display import display

        shell = _shell()
        before = _msg_count(shell)
        if self._handle is None:
            start = _CELL_START.get(id(shell))
            self._nb_alone = before is not None and before == start
            self._handle = display(data, raw=True, display_id=True)
        else:
            self._nb_alone = self._nb_alone and before == self._nb_count
            self._handle.update(data, raw=True)
        after = _msg_count(shell)
        # exactly one message (ours) since the last check: nothing else was output in between
        self._nb_alone = self._nb_alone and before is not None and after == before + 1
        self._nb_count = after

    def _nb_clear(self) -> bool:
        """Remove this fit's display when it is its cell's only output (counted by the session's messages: nothing
        before it in the cell, nothing since but its own updates), so `lr_find` leaves no blank output area.
        Jupyter can only clear a whole cell's outputs, hence the count: a user's output is never cleared."""
        if not self._nb_alone or _msg_count(_shell()) != self._nb_count:
            return False
        from IPython.display import clear_output

        clear_output(wait=False)
        return True

    def _finish(self) -> None:
        """Draw the final state and let go of this fit's outputs."""
        if self._view == "terminal":
            self._term_clear()
        elif self._view == "notebook" and self._st is not None and (self._handle is not None or self._st.rows):
            view = notebook_view(self._st)
            if not (view == {"text/plain": ""} and self._handle is not None and self._nb_clear()):
                self._nb_show(view)
        self._handle = None
        self._nb_alone = False

    def _finish_stale(self) -> None:
        """A fit that ended by an exception (not Ctrl-C, which finishes its bar itself) never reached `after_fit`:
        finish its bar where it is, so the new fit starts fresh (in a notebook, in its own cell)."""
        st = self._st
        if st is not None and st.end is None:
            batch = st.n + 1  # the batch that was running: its end was never counted
            where = f"epoch {st.epoch + 1}, batch {batch}" if st.mode == "fit" else f"batch {batch}"
            st.end, st.end_line = "stopped", f"stopped by an error at {where}"
            try:
                self._finish()
            except Exception:  # the old output may be gone (a closed stream, a restarted front end)
                pass
        if self._old_logger is not None and self.learn is not None:
            self.learn.logger, self._old_logger = self._old_logger, None
        self._disarm_sigint()
        self._unredirect()

    # ---- other writes to the terminal ------------------------------------------------------------------------------
    def _redirect(self) -> None:
        """While the bar is drawn on a terminal, send the terminal's `sys.stdout`/`sys.stderr` through `_AboveBar`.
        Only streams that are terminals are wrapped (a file or a pipe gets no bar to collide with), and only by the
        outermost fit (a nested one's bar shares the line)."""
        self._partial = False
        if self._view != "terminal" or not self._st or not self._st.live or not _isatty(self._bar_stream()):
            return
        out, err = sys.stdout, sys.stderr
        if isinstance(out, _AboveBar) or isinstance(err, _AboveBar):
            return
        thread = threading.get_ident()
        self._raw = (out, err)
        if _isatty(out):
            sys.stdout = _AboveBar(out, self, thread)
        if _isatty(err):
            sys.stderr = _AboveBar(err, self, thread)

    def _unredirect(self) -> None:
        """Put back the streams `_redirect` replaced (a stream something else replaced since then is left alone)."""
        raw, self._raw = self._raw, None
        self._partial = False
        if raw is None:
            return
        # The replaced proxies are kept alive: this may run inside one of their writes, and CPython's `print` holds
        # only a borrowed reference to `sys.stdout` (its next write would be to freed memory).
        self._retired = (sys.stdout, sys.stderr)
        if isinstance(sys.stdout, _AboveBar) and sys.stdout._cb is self:
            sys.stdout = raw[0]
        if isinstance(sys.stderr, _AboveBar) and sys.stderr._cb is self:
            sys.stderr = raw[1]

    def _redirect_live(self) -> bool:
        # `_running` walks the stack: only run on a write, never per batch
        st = self._st
        return st is not None and st.end is None and self._running()

    def _redraw(self) -> None:
        st = self._st
        if st is not None and st.live and st.end is None:
            self._draw(force=True)

    # ---- Ctrl-C ---------------------------------------------------------------------------------------------------
    def _arm_sigint(self) -> None:
        # Only Python's own handler is replaced (a program's or a framework's own stays), and only in the main thread.
        if threading.current_thread() is not threading.main_thread():
            return
        try:
            current = _signal.getsignal(_SIGINT)
            owner = getattr(current, "__self__", None)
            if isinstance(owner, ProgressCallback) and owner is not self and not owner._running():
                owner._disarm_sigint()  # left by a fit that ended with an error: put Python's handler back first
                current = _signal.getsignal(_SIGINT)
            if current is not signal.default_int_handler:
                return
            self._old_sigint = _signal.signal(_SIGINT, self._on_sigint)
        except (ValueError, OSError):
            self._old_sigint = None

    def _disarm_sigint(self) -> None:
        if self._old_sigint is not None:
            try:
                if _signal.getsignal(_SIGINT) == self._on_sigint:
                    _signal.signal(_SIGINT, self._old_sigint)
            except (ValueError, OSError):
                pass
            self._old_sigint = None

    def _running(self, frame: Any = None) -> bool:
        """Whether this callback's learner is running (one of its methods is on the stack): a fit that ended with an
        error never reached `after_fit`, so its handler may still be installed when it is not."""
        f = frame if frame is not None else sys._getframe(1)
        learn = self.learn
        while f is not None:
            if learn is not None and f.f_locals.get("self") is learn:
                return True
            f = f.f_back
        return False

    def _on_sigint(self, signum: int, frame: Any) -> None:
        st = self._st
        if st is None or st.end is not None or not self._running(frame):
            self._disarm_sigint()  # stale: behave as Python's own handler
            signal.default_int_handler(signum, frame)
        if st.pending:  # a second Ctrl-C: the batch is taking too long, stop now
            self._interrupt(mid_step=True)
        st.pending = True

    def _fit_state(self) -> _State:
        st = self._st
        if st is None:
            raise RuntimeError("ProgressCallback: no fit has started (before_fit never ran), so there is nothing to stop")
        return st

    def _where(self) -> str:
        st = self._fit_state()
        if st.mode == "eval":
            return f"interrupted at batch {st.n} of a validation pass"
        if st.mode == "search":
            return f"interrupted lr_find at batch {st.n}"
        return f"interrupted at epoch {st.epoch + 1}, batch {st.n}"

    def _interrupt(self, mid_step: bool = False) -> None:
        st = self._fit_state()
        where = self._where()
        if st.mode == "search":  # lr_find puts weights and optimizer back however the search ends (lr_finder.py)
            msg = f"{where}: the model's weights and the optimizer's state are back to those from before lr_find"
        elif mid_step:
            msg = f"{where}, in the middle of a batch (Ctrl-C twice): the weights may be partly updated"
        elif st.mode == "eval":
            msg = f"{where}: the model's weights are unchanged"
        else:
            msg = f"{where}: the model holds the weights of the last completed step"
            if st.validating:
                msg += " (the interrupt came during the validation pass)"
        st.pending = False
        st.end, st.end_line = "interrupted", where
        self._disarm_sigint()
        self._finish()
        self._unredirect()
        if self._old_logger is not None:
            self.learn.logger, self._old_logger = self._old_logger, None
        phase = "lr_find" if st.mode == "search" else "valid" if st.validating else "train"
        _raise_interrupt(msg, {"epoch": st.epoch + 1, "batch": st.n, "phase": phase})

    # ---- the table --------------------------------------------------------------------------------------------------
    def _write_row(self, log: list | str) -> None:
        if not isinstance(log, (list, tuple)):  # a callback's message (SaveModelCallback...): one line, not a row
            if self._view == "terminal":
                self._term_clear()  # its own line, not on the bar's; in a notebook it prints under the table
            print(log, file=self._table_stream(), flush=True)
            return
        learn, st = self.learn, self._st
        names = learn.recorder.metric_names if hasattr(learn, "recorder") else [str(i) for i in range(len(log))]
        cells = [_fmt(v) for v in log]
        if len(cells) < len(names):
            # A cancelled phase leaves its columns out; keep time in the last column.
            cells = cells[:-1] + [""] * (len(names) - len(cells)) + cells[-1:]
        if st is None or not st.rows:
            first = True
            width = self._width() if self._view == "terminal" else None
            widths, sep = _table_widths(names, cells, width)
            blocks = _table_blocks(widths, sep, width)
            if len(blocks) > 1:  # split anyway: the usual two spaces read better
                sep, blocks = 2, _table_blocks(widths, 2, width)
        else:
            first, widths, sep, blocks = False, st.widths, st.sep, st.blocks
        if st is not None:
            st.names, st.widths, st.sep, st.blocks = list(names), widths, sep, blocks
            st.rows.append(cells)
        if self._view == "notebook":
            self._draw(force=True)
            return
        self._term_clear()  # the row must not start on the bar's line
        out = self._table_stream()
        if first:
            print(_block_text(list(names), widths, sep, blocks), file=out, flush=True)
        print(_block_text(cells, widths, sep, blocks), file=out, flush=True)


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None

