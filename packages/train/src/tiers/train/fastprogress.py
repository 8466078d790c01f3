"""`progress_bar` and `master_bar`: the fastprogress bars fastai notebooks use, drawn like a fit's progress.

>>> for i in progress_bar(range(10)): ...                                  # doctest: +SKIP
>>> mb = master_bar(range(3))                                              # doctest: +SKIP
>>> for epoch in mb:                                                       # doctest: +SKIP
...     for b in progress_bar(items, parent=mb): ...
...     mb.write(f"epoch {epoch} done")

On a terminal (the stream is a TTY) a bar is one line redrawn in place (a child bar shares its master's line) and
wiped when done; `mb.write` prints above it. Anywhere else (a pipe, a log file) nothing is redrawn and no control
character is written: a finished bar leaves one plain line (`leave=True`), and `mb.write` prints its line.
"""

import os
import shutil
import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any

from tiers.train.callbacks.progress import _clock, _eta, _rate, _text_bar

__all__ = ["progress_bar", "master_bar"]

_BAR = 20


def _isatty(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def _write(stream: IO[str], s: str) -> None:
    try:
        stream.write(s)
        stream.flush()
    except ValueError:  # closed under us: drawing is best effort
        pass


class progress_bar:  # noqa: N801 - fastprogress's name, used unimported in fastai notebooks
    """Iterate over `gen` showing a progress bar (fastprogress's `progress_bar`); every item is yielded.

    `total` defaults to `len(gen)`; `comment` is shown after the bar (settable while iterating); `parent` a
    `master_bar` whose line this bar shares; `leave` keeps a final line (on a plain stream); `display=False` shows
    nothing; `file` the stream (default `sys.stderr`)."""

    def __init__(self, gen: Iterable[Any], total: int | None = None, display: bool = True, leave: bool = True,
                 parent: "master_bar | None" = None, comment: str = "", file: IO[str] | None = None,
                 throttle: float = 0.1) -> None:
        self.gen, self.parent, self.leave, self.display, self.comment = gen, parent, leave, display, comment
        if total is None:
            try:
                total = len(gen)  # type: ignore[arg-type]  # an Iterable may have a length; a generator has not
            except TypeError:
                total = None
        self.total, self.throttle = total, throttle
        self._file = file
        self.n, self.start, self._last_draw, self._drawn = 0, 0.0, 0.0, 0
        if parent is not None:
            parent.child = self

    @property
    def file(self) -> IO[str]:
        """The stream the bar draws on (its master's, under a `master_bar`)."""
        if self.parent is not None:
            return self.parent.file
        return self._file if self._file is not None else sys.stderr

    def __len__(self) -> int:
        if self.total is None:
            raise TypeError(f"progress_bar over a {type(self.gen).__name__} has no length; pass total=")
        return self.total

    def __iter__(self) -> Iterator[Any]:
        self.n, self.start = 0, time.perf_counter()
        self.update(0)
        try:
            for item in self.gen:
                yield item
                self.update(self.n + 1)
        finally:
            self.on_done()

    def text(self, now: float | None = None) -> str:
        """The bar as one line of text: percentage, bar, count, elapsed<remaining, rate and comment."""
        elapsed = (time.perf_counter() if now is None else now) - self.start
        if self.total:
            frac = min(self.n / self.total, 1.0)
            head = f"{100 * frac:3.0f}% |{_text_bar(frac, _BAR, '#' if not _isatty(self.file) else chr(0x2588))}| "
            line = f"{head}{self.n}/{self.total} [{_clock(elapsed)}<{_clock(_eta(elapsed, frac))} {_rate(self.n, elapsed)}]"
        else:
            line = f"{self.n}/{'?' if self.total is None else self.total} [{_clock(elapsed)} {_rate(self.n, elapsed)}]"
        return f"{line} {self.comment}".rstrip()

    def update(self, n: int) -> None:
        """Set the count to `n` and redraw (on a terminal, at most once per `throttle` seconds but always at 0 and
        at the end)."""
        self.n = n
        if not self.display:
            return
        now = time.perf_counter()
        last = self.total is not None and n >= self.total
        if n and not last and now - self._last_draw < self.throttle:
            return
        self._last_draw = now
        if self.parent is not None:
            self.parent._draw()
        elif _isatty(self.file):
            self._drawn = _redraw(self.file, self.text(now), self._drawn)

    def on_done(self) -> None:
        """End the bar: wipe its terminal line, or on a plain stream print its final line when `leave`."""
        if not self.display:
            return
        if self.parent is not None:
            self.parent._draw()
            return
        if _isatty(self.file):
            self._drawn = _wipe(self.file, self._drawn)
            if self.leave:
                _write(self.file, self.text() + "\n")
        elif self.leave:
            _write(self.file, self.text() + "\n")


def _fit(line: str, stream: IO[str]) -> str:
    try:
        width = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        width = shutil.get_terminal_size((80, 24)).columns
    return line[: max(width - 3, 10)]


def _redraw(stream: IO[str], line: str, drawn: int) -> int:
    line = _fit(line, stream)
    pad = " " * max(drawn - len(line), 0)  # blank what a longer previous line left
    _write(stream, "\r" + line + pad + ("\r" + line if pad else ""))
    return len(line)


def _wipe(stream: IO[str], drawn: int) -> int:
    if drawn:
        _write(stream, "\r" + " " * drawn + "\r")
    return 0


class master_bar:  # noqa: N801 - fastprogress's name
    """The outer bar of nested loops (fastprogress's `master_bar`): iterate over it, give inner
    `progress_bar(..., parent=mb)`s, and `mb.write(line)` to print a line (a list is joined as a table row).

    `file` is the stream (default `sys.stderr`); on a terminal the master and its current child share one line."""

    def __init__(self, gen: Iterable[Any], total: int | None = None, hide_graph: bool = True,
                 file: IO[str] | None = None) -> None:
        self._file = file
        self.main_bar = progress_bar(gen, total=total, leave=False, file=file)
        self.main_bar.update = self._main_update  # type: ignore[method-assign]  # the master draws both bars
        self.child: progress_bar | None = None
        self._drawn = 0
        self.lines: list[str] = []

    @property
    def file(self) -> IO[str]:
        """The stream the bars draw on."""
        return self._file if self._file is not None else sys.stderr

    @property
    def total(self) -> int | None:
        """The number of outer iterations (None when unknown)."""
        return self.main_bar.total

    def __len__(self) -> int:
        return len(self.main_bar)

    def __iter__(self) -> Iterator[Any]:
        try:
            yield from self.main_bar
        finally:
            self.on_done()

    def _main_update(self, n: int) -> None:
        self.main_bar.n = n
        if n == 0:
            self.child = None
        self._draw()

    def _draw(self) -> None:
        if not _isatty(self.file):
            return
        line = self.main_bar.text()
        if self.child is not None and self.child.n < (self.child.total or float("inf")):
            line += " | " + self.child.text()
        self._drawn = _redraw(self.file, line, self._drawn)

    def write(self, line: Any, table: bool = False) -> None:
        """Print `line` (a list: its items joined as one row) above the bars."""
        text = "  ".join(str(x) for x in line) if isinstance(line, list | tuple) else str(line)
        self.lines.append(text)
        tty = _isatty(self.file)
        if tty:
            self._drawn = _wipe(self.file, self._drawn)
        _write(self.file, text + "\n")
        if tty:
            self._draw()

    def on_done(self) -> None:
        """Wipe the shared line (terminal); on a plain stream print the final count."""
        if _isatty(self.file):
            self._drawn = _wipe(self.file, self._drawn)
        else:
            _write(self.file, self.main_bar.text() + "\n")

    def update_graph(self, graphs: Any, x_bounds: Any = None, y_bounds: Any = None) -> None:
        """Plot `graphs` (a list of [x, y] pairs) with matplotlib, as fastprogress's `update_graph` does."""
        from tiers.dispatch.extras import require

        plt = require("matplotlib.pyplot", dist="tiers-train", extra="plots", what="master_bar.update_graph")
        if getattr(self, "_fig", None) is None:
            self._fig, self._ax = plt.subplots(figsize=(6, 4))
        ax = self._ax
        ax.clear()
        for x, y in graphs:
            ax.plot(x, y)
        if x_bounds is not None:
            ax.set_xlim(*x_bounds)
        if y_bounds is not None:
            ax.set_ylim(*y_bounds)
