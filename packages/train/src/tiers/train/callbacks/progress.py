"""`ProgressCallback`: a console progress bar per training/validation pass and a metrics table per epoch.

The bar (a one-line text bar; tqdm in a notebook) is shown only on a terminal unless forced (`show_bar=True`), and is redrawn at most
`1/throttle` times a second; with no bar the callback takes no part in the per-batch events at
all. The table row of each epoch is printed as plain text (so it also lands in log files):

    epoch  train_loss  valid_loss  accuracy  time
    0      0.512345    0.401234    0.880000  00:01

In a Jupyter notebook (when no `file` is given) the table is one HTML table updated in place, and
the bar is drawn by default.
"""

import sys
import time
from typing import IO, Any

from tiers.train.callbacks.core import Callback

__all__ = ["ProgressCallback"]


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.6f}"
    if hasattr(v, "item") and getattr(v, "ndim", 1) == 0:
        return _fmt(v.item())
    return str(v)


def _in_notebook() -> bool:
    # A Jupyter kernel has imported IPython and runs a ZMQ shell; never import IPython ourselves.
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def _html_table(names: list[str], rows: list[list[str]]) -> str:
    from html import escape

    head = "".join(f"<th>{escape(n)}</th>" for n in names)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table border="1" class="dataframe"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _clock(t: float | None) -> str:
    if t is None:
        return "?"
    m, sec = divmod(int(t), 60)
    h, m = divmod(m, 60)
    return f"{h:d}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


class _TextBar:
    """A one-line console bar with the part of tqdm's interface this callback uses (`n`, `update`, `reset`,
    `set_description`, `set_postfix_str`, `close`). A draw is one formatted line written with a carriage return:
    several times cheaper than tqdm's, which matters because the bar is re-created for every fit."""

    def __init__(self, total: int | None, desc: str, file: IO[str]) -> None:
        self.file, self.desc, self.total, self.n, self.postfix = file, desc, total, 0, ""
        enc = (getattr(file, "encoding", None) or "utf-8").lower().replace("-", "")
        self._fill = "\u2588" if enc.startswith("utf") else "#"
        self._width = 0
        self._t0 = time.monotonic()
        self.refresh()

    def reset(self, total: int | None = None) -> None:
        self.total, self.n, self.postfix, self._t0 = total, 0, "", time.monotonic()
        self.refresh()

    def set_description(self, desc: str, refresh: bool = True) -> None:
        self.desc = desc
        if refresh:
            self.refresh()

    def set_postfix_str(self, s: str, refresh: bool = True) -> None:
        self.postfix = s
        if refresh:
            self.refresh()

    def update(self, n: int = 1) -> None:
        self.n += n
        self.refresh()

    def refresh(self) -> None:
        n, total = self.n, self.total
        elapsed = time.monotonic() - self._t0
        if total:
            frac = min(n / total, 1.0)
            filled = int(frac * 20)
            left = _clock(elapsed * (total - n) / n) if n else "?"
            line = f"{self.desc}: {frac * 100:3.0f}%|{self._fill * filled}{' ' * (20 - filled)}| {n}/{total} " \
                   f"[{_clock(elapsed)}<{left}]"
        else:
            line = f"{self.desc}: {n}it [{_clock(elapsed)}]"
        if self.postfix:
            line = f"{line} {self.postfix}"
        width = len(line)
        self._write("\r" + line + " " * (self._width - width))  # blank what a longer previous line left
        self._width = width

    def clear(self) -> None:
        """Blank the line (so other output can be printed); the next draw shows the bar again."""
        if self._width:
            self._write("\r" + " " * self._width + "\r")
            self._width = 0

    close = clear  # leave nothing behind (tqdm's leave=False)

    def _write(self, s: str) -> None:
        try:
            self.file.write(s)
            self.file.flush()
        except ValueError:  # the stream was closed under us: drawing is best effort
            pass


class ProgressCallback(Callback):
    """Default callback (order 60): progress bar and per-epoch metrics table.

    `file` receives bar and table (default: bar on stderr, table on stdout); `show_bar=None` shows
    the bar only when that stream is a terminal, True forces it, False hides it; `throttle` is the
    minimum number of seconds between two redraws of the bar.
    """

    order = 60
    remove_on_fetch = True

    def __init__(self, file: IO[str] | None = None, show_bar: bool | None = None, throttle: float = 0.1) -> None:
        self.file, self.show_bar, self.throttle = file, show_bar, throttle
        self.bar: Any = None
        self._old_logger: Any = None
        self._header_done = False
        self._bar_on, self._done, self._next = False, [0], 0.0
        self._notebook, self._rows, self._display = False, [], None

    # ---- streams -----------------------------------------------------------------------------------------
    def _bar_stream(self) -> IO[str]:
        return self.file if self.file is not None else sys.stderr

    def _table_stream(self) -> IO[str]:
        return self.file if self.file is not None else sys.stdout

    def _want_bar(self) -> bool:
        if self.show_bar is not None:
            return bool(self.show_bar)
        if self.file is None and _in_notebook():
            return True
        isatty = getattr(self._bar_stream(), "isatty", None)
        try:
            return bool(isatty and isatty())
        except ValueError:  # a closed stream
            return False

    def _batch_events(self, on: bool) -> None:
        # Switching run_train/run_valid off removes this callback from every per-batch event list.
        if self.run_train == on and self.run_valid == on:
            return
        object.__setattr__(self, "run_train", on)
        object.__setattr__(self, "run_valid", on)
        if self.learn is not None:
            self.learn._invalidate_cbs()

    # ---- events --------------------------------------------------------------------------------------------
    def before_fit(self) -> None:
        """Decide whether to draw a bar; route the recorder's rows into the table."""
        self._bar_on = self._want_bar()
        self._batch_events(self._bar_on)
        self._header_done = False
        self._notebook = self.file is None and _in_notebook()
        self._rows: list[list[str]] = []
        self._display: Any = None
        learn = self.learn
        if learn.logger is print:
            self._old_logger = learn.logger
            learn.logger = self._write_row

    def _start_bar(self, desc: str) -> None:
        if not self._bar_on:
            return
        try:
            total = len(self.learn.dl)
        except TypeError:
            total = None
        learn = self.learn
        label = f"epoch {learn.epoch + 1}/{learn.n_epoch} {desc}" if not learn.validating else desc
        self._done[0] = 0
        self._next = time.monotonic() + self.throttle
        if self.bar is not None:
            # One bar per fit, reset for each pass: creating a tqdm bar costs several times more.
            self.bar.set_description(label, refresh=False)
            self.bar.reset(total=total)
            return
        if self._notebook:
            from tqdm.auto import tqdm  # widgets when ipywidgets is installed, text otherwise

            self.bar = tqdm(total=total, desc=label, file=self._bar_stream(), leave=False, mininterval=self.throttle)
        else:
            self.bar = _TextBar(total, label, self._bar_stream())

    def _end_pass(self) -> None:
        if self.bar is not None and self.bar.n != self._done[0]:
            self.bar.update(self._done[0] - self.bar.n)

    def _close_bar(self) -> None:
        if self.bar is not None:
            self._end_pass()
            self.bar.close()
            self.bar = None

    def before_train(self) -> None:
        """Start the bar on the training pass."""
        self._start_bar("train")

    def before_validate(self) -> None:
        """Start the bar on the validation pass."""
        self._start_bar("valid")

    def after_batch(self) -> None:
        """Count the batch; redraw at most once per `throttle` seconds."""
        # a list item, not an attribute: `Callback.__setattr__` (learner forwarding) would run every batch
        done = self._done
        done[0] += 1
        now = time.monotonic()
        if now >= self._next and self.bar is not None:
            self._next = now + self.throttle
            self.bar.update(done[0] - self.bar.n)
            if self.learn.training:
                loss = self.learn.smooth_loss
                if loss is not None:
                    self.bar.set_postfix_str(f"loss {loss:.4f}", refresh=False)

    def after_train(self) -> None:
        """Complete the training pass on the bar."""
        self._end_pass()

    def after_validate(self) -> None:
        """Complete the validation pass on the bar."""
        self._end_pass()

    def after_fit(self) -> None:
        """Close any bar left open and restore the logger (per-batch events stay as `before_fit` set them)."""
        self._close_bar()
        if self._old_logger is not None:
            self.learn.logger = self._old_logger
            self._old_logger = None

    # ---- the table -------------------------------------------------------------------------------------------
    def _write_row(self, log: list) -> None:
        names = self.learn.recorder.metric_names if hasattr(self.learn, "recorder") else [str(i) for i in range(len(log))]
        widths = [max(len(n), 8) for n in names]
        out = self._table_stream()
        if isinstance(self.bar, _TextBar):
            self.bar.clear()  # the row must not start on the bar's line
        if not self._header_done and not self._notebook:
            print("  ".join(n.ljust(w) for n, w in zip(names, widths)).rstrip(), file=out, flush=True)
            self._header_done = True
        cells = [_fmt(v) for v in log]
        if len(cells) < len(names):
            # A cancelled phase leaves its columns out; keep time in the last column.
            cells = cells[:-1] + [""] * (len(names) - len(cells)) + cells[-1:]
        if self._notebook:
            self._rows.append(cells)
            self._show_html(names)
            return
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip(), file=out, flush=True)

    def _show_html(self, names: list[str]) -> None:
        from IPython.display import HTML, display

        table = HTML(_html_table(names, self._rows))
        if self._display is None:
            self._display = display(table, display_id=True)
        else:
            self._display.update(table)
