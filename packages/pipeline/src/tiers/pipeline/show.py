"""Objects that can show themselves: what a `Pipeline` decodes labels and values into so `show` can display them.

`show_title` writes a value as the title of a matplotlib axis, as a new entry of a pandas Series (one row of a
table being built), or prints it when there is no context. `TitledInt`, `TitledFloat`, `TitledStr`, `TitledTuple`,
`Category` and `MultiCategory` are builtins (and `L`) with a `show` method that calls it. Neither matplotlib nor
pandas is imported here: a context is recognised by what it can do.
"""

import sys
from typing import Any

from tiers.dispatch import L

__all__ = [
    "show_title", "ShowTitle", "TitledInt", "TitledFloat", "TitledStr", "TitledTuple", "Category", "MultiCategory",
]


def _is_series(ctx) -> bool:
    pd = sys.modules.get("pandas")  # a Series can only exist if pandas was imported
    return pd is not None and isinstance(ctx, pd.Series)


def show_title(o: object, ax: Any = None, ctx: Any = None, label: str | None = None, color: str = "black",
               **kwargs: Any) -> Any:
    """Show `o` in `ax` (or `ctx`): the title of a matplotlib axis (appended under an existing one), an entry
    named `label` added to a pandas Series (a `_` is appended while the name is taken), or printed when both are
    None. Returns the context (a new Series for a Series).

    >>> show_title("cat")
    cat
    """
    ax = ctx if ax is None else ax
    if ax is None:
        print(o)
        return None
    if hasattr(ax, "set_title"):
        t = ax.title.get_text()
        ax.set_title(f"{t}\n{o}" if t else str(o), color=color)
        return ax
    if _is_series(ax):
        pd = sys.modules["pandas"]  # already imported: ax is a Series (pipeline does not depend on pandas)
        label = "text" if label is None else label
        while label in ax:
            label += "_"
        return pd.concat([ax, pd.Series({label: o})])
    raise TypeError(
        f"show_title: cannot show {o!r} in a ctx of type {type(ax).__name__}; pass a matplotlib axis, a pandas "
        f"Series, or None to print it"
    )


class ShowTitle:
    """Mixin adding `show`: displays `str(self)` with `show_title`, with the class's `_show_args` (e.g. the label
    used as a table column) as defaults."""

    _show_args = {"label": "text"}

    def show(self, ctx: Any = None, **kwargs: Any) -> Any:
        """Show `self` in `ctx` (a matplotlib axis, a pandas Series, or None to print); returns the ctx."""
        return show_title(str(self), ctx=ctx, **{**self._show_args, **kwargs})


class TitledInt(int, ShowTitle):
    """An `int` that can `show` itself (as a title or a table entry)."""


class TitledFloat(float, ShowTitle):
    """A `float` that can `show` itself (as a title or a table entry)."""


class TitledStr(str, ShowTitle):
    """A `str` that can `show` itself (as a title or a table entry).

    >>> TitledStr("the quick brown fox").truncate(2)
    'the quick'
    """

    def truncate(self, n: int) -> "TitledStr":
        """The first `n` space-separated words of `self`."""
        return TitledStr(" ".join(self.split(" ")[:n]))


class TitledTuple(tuple, ShowTitle):
    """A `tuple` that can `show` itself (as a title or a table entry)."""

    def __new__(cls, x=(), *rest):
        return super().__new__(cls, (x, *rest) if rest or not isinstance(x, (tuple, list, L)) else x)


class Category(str, ShowTitle):
    """A class label: a `str` that shows itself under the label "category" (what `Categorize` decodes to)."""

    _show_args = {"label": "category"}


class MultiCategory(L):
    """Several class labels (an `L`) shown as one `;`-separated title (what `MultiCategorize` decodes to).

    >>> MultiCategory(["cat", "dog"]).show()
    cat;dog
    """

    def show(self, ctx: Any = None, sep: str = ";", color: str = "black", **kwargs: Any) -> Any:
        """Show the labels joined by `sep` in `ctx` (a matplotlib axis, a pandas Series, or None to print)."""
        return show_title(sep.join(str(o) for o in self), ctx=ctx, color=color, **kwargs)
