"""`show_batch` and `show_results`: type-dispatched display of decoded samples, specialised by the application
layers (`@typedispatch def show_batch(x: TensorImage, y, samples, ...)`).

The generic versions draw on a grid of matplotlib axes when the inputs are images (`TensorImageBase`), and
otherwise build a table (one pandas row per sample) and show it with `show_table`: an HTML DataFrame in a Jupyter
notebook, width-aware text elsewhere. Both return the contexts they drew on; the loader methods that call them
(`TfmdDL.show_batch`, `show_results`) return nothing, so a notebook cell ending with one shows the figure or table
once and no list of axes or rows after it.
"""

import math
import shutil
import sys
import textwrap
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, TextIO

from torch import Tensor

from tiers.dispatch import L, typedispatch
from tiers.dispatch.extras import require
from tiers.pipeline import show_title
from tiers.tensors import TensorImageBase

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["show_batch", "show_results", "get_grid", "wrapped_table", "show_table", "in_notebook"]


def get_grid(n: int, nrows: int | None = None, ncols: int | None = None, figsize: tuple[float, float] | None = None,
             title: str | None = None, imsize: float = 3, return_fig: bool = False) -> list | tuple[Any, list]:
    """A grid of `n` matplotlib axes (`nrows` x `ncols`, square-ish by default, `imsize` inches each); the extra
    axes are hidden. Returns the flat list of axes (and the figure when `return_fig`)."""
    plt = require("matplotlib.pyplot", dist="tiers-data", extra="plots", what="get_grid (show_batch/show_results)")

    n = max(int(n), 1)
    if ncols is None:
        ncols = math.ceil(math.sqrt(n)) if nrows is None else math.ceil(n / nrows)
    if nrows is None:
        nrows = math.ceil(n / ncols)
    figsize = figsize or (ncols * imsize, nrows * imsize)
    fig, axs = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False)
    axs = [ax for row in axs for ax in row]
    for ax in axs[n:]:
        ax.set_axis_off()
    if title is not None:
        fig.suptitle(title)
    return (fig, axs[:n]) if return_fig else axs[:n]


def _default_ctxs(samples, n: int):
    "Axes when the first element of a sample is an image, else one pandas Series (a table row) per sample."
    first = samples[0][0] if isinstance(samples[0], tuple) and len(samples[0]) else samples[0]
    if isinstance(first, TensorImageBase):
        return get_grid(n), False
    pd = require("pandas", dist="tiers-data", extra="plots", what="show_batch/show_results (tables)")

    return [pd.Series(dtype=object) for _ in range(n)], True


def _show_one(o, c, label: str, **kwargs):
    if hasattr(o, "show"):
        return o.show(ctx=c, **kwargs)
    if _is_row(c):  # a value that cannot show itself still gets a column in a table
        return show_title(o.tolist() if isinstance(o, Tensor) else o, ctx=c, label=label)
    return c


def _is_row(c) -> bool:
    return type(c).__name__ == "Series"


def _show_all(columns, ctxs, n: int, **kwargs) -> list:
    for i, col in enumerate(columns):
        ctxs = [_show_one(o, c, f"column_{i}", **kwargs) for o, c in zip(col[:n], ctxs)]
    return ctxs


def _print_table(ctxs) -> None:
    pd = require("pandas", dist="tiers-data", extra="plots", what="show_batch/show_results (tables)")

    show_table(pd.DataFrame(list(ctxs)))


def in_notebook() -> bool:
    """True inside a Jupyter kernel (a rich front end that renders HTML); False at a terminal, in IPython's terminal
    shell and in scripts. IPython is never imported here: a kernel has always imported it already."""
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    shell = get() if get is not None else None
    # by class name along the MRO: Colab's and VS Code's kernels subclass the ZMQ shell
    return any(c.__name__ == "ZMQInteractiveShell" for c in type(shell).__mro__)


def show_table(df: "pd.DataFrame", file: TextIO | None = None) -> None:
    """Show DataFrame `df`: as an HTML table in a Jupyter notebook (with the wrapped text as its plain-text form, for
    front ends without HTML), else printed to `file` (stdout by default) at the terminal's width: pandas' own layout
    when it fits, long cells wrapped (`wrapped_table`) when it does not, and a table with too many columns for the
    width split into blocks of columns, one under the other. Returns nothing, so it can end a notebook cell without
    an echo."""
    if file is None and in_notebook():
        from IPython.display import display

        display({"text/html": df.to_html(), "text/plain": wrapped_table(df, 100)}, raw=True)
        return
    print(_fit_table(df, shutil.get_terminal_size((120, 24)).columns), file=file or sys.stdout)


def _widest(text: str) -> int:
    return max(map(len, text.splitlines()), default=0)


def _fit_table(df, width: int) -> str:
    """`df` as text at most `width` wide where possible: pandas' layout, else long cells wrapped (`wrapped_table`),
    else the columns split into blocks stacked one under the other, each block wrapped (too many columns)."""
    text = df.to_string()
    if _widest(text) <= width:
        return text
    text = wrapped_table(df, width)
    if _widest(text) <= width or df.shape[1] < 2:
        return text
    blocks: list = []
    group: list = []
    for col in range(df.shape[1]):
        if group and _widest(wrapped_table(df.iloc[:, group + [col]], width)) > width:
            blocks.append(group)
            group = []
        group.append(col)
    blocks.append(group)
    return "\n\n".join(wrapped_table(df.iloc[:, g], width) for g in blocks)


def _cell(v: Any) -> str:
    """A table cell as text on one line; a float as pandas shows it (at most 6 decimals, no float32 noise such as
    2.9839999675750732), in scientific notation when it is very large or very small."""
    if isinstance(v, Real) and not isinstance(v, Integral) and math.isfinite(v):
        a = abs(float(v))
        if a == 0 or 1e-4 <= a < 1e15:
            text = f"{float(v):.6f}".rstrip("0").rstrip(".")
            return "0" if text in ("", "-0") else text
        return f"{float(v):.6g}"
    return " ".join(str(v).split())


def wrapped_table(df: "pd.DataFrame", width: int = 120, min_col: int = 12) -> str:
    """`df` as plain text no wider than `width`: the widest columns are narrowed (not below `min_col`) and their
    cells wrapped over several lines, so long texts (a review, a token stream) stay readable in a terminal.

    >>> import pandas as pd
    >>> print(wrapped_table(pd.DataFrame({"text": ["a b c d e f g h"], "label": ["pos"]}), width=18, min_col=5))
       text      label
    -  --------  -----
    0  a b c d   pos
       e f g h
    """
    head = ["", *map(str, df.columns)]
    rows = [[str(i), *map(_cell, row)] for i, row in zip(df.index, df.itertuples(False))]
    widths = [max(len(c) for c in col) for col in zip(head, *rows)]
    budget = width - 2 * (len(widths) - 1)
    while sum(widths) > budget:
        j = max(range(1, len(widths)), key=widths.__getitem__, default=None)  # never the index column
        if j is None or widths[j] <= min_col:
            break
        widths[j] = max(min_col, widths[j] - (sum(widths) - budget))
    lines = []
    for cells in (head, ["-" * w for w in widths], *rows):
        wrapped = [textwrap.wrap(c, w, break_long_words=True) or [""] for c, w in zip(cells, widths)]
        for k in range(max(map(len, wrapped))):
            parts = [(col[k] if k < len(col) else "").ljust(w) for col, w in zip(wrapped, widths)]
            lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _columns(samples) -> list:
    if not isinstance(samples[0], tuple):
        return [list(samples)]
    return [[s[i] for s in samples] for i in range(len(samples[0]))]


def _show_samples(who: str, samples, ctxs, max_n: int, **kwargs) -> tuple[list, bool, int]:
    "Show the first `max_n` `samples` on `ctxs` (default ones when None): the contexts, whether a table, how many."
    samples = L(samples)
    n = min(len(samples), max_n)
    if n == 0:
        raise ValueError(f"{who}: there are no samples to show.")
    table = False
    if ctxs is None:
        ctxs, table = _default_ctxs(samples, n)
    return _show_all(_columns(samples), list(ctxs)[:n], n, **kwargs), table, n


@typedispatch
def show_batch(x, y, samples, ctxs=None, max_n: int = 9, **kwargs):
    """Show decoded `samples` (each a tuple that can show itself element by element) on `ctxs` (made when None);
    `x` and `y` are the decoded batch's inputs and targets, used only to choose a specialised version."""
    ctxs, table, _ = _show_samples("show_batch", samples, ctxs, max_n, **kwargs)
    if table:
        _print_table(ctxs)
    return ctxs


@typedispatch
def show_results(x, y, samples, outs, ctxs=None, max_n: int = 9, **kwargs):
    """Show decoded `samples` and, after them on the same contexts, the decoded model outputs `outs`."""
    ctxs, table, n = _show_samples("show_results", samples, ctxs, max_n, **kwargs)
    out_cols = _columns(L(outs)) if len(outs) else []
    if table:
        # predictions get their own columns, named apart from the targets'
        for col in out_cols:
            ctxs = [o.show(ctx=c, label="prediction", **kwargs) if hasattr(o, "show") else c
                    for o, c in zip(col[:n], ctxs)]
        _print_table(ctxs)
        return ctxs
    return _show_all(out_cols, ctxs, n, **kwargs)
