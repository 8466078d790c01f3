"""Display helpers: show_title into print, a matplotlib axis and a pandas Series; the Titled types and categories."""

import subprocess
import sys

import pytest

from tiers.pipeline import (
    Category,
    MultiCategory,
    ShowTitle,
    TitledFloat,
    TitledInt,
    TitledStr,
    TitledTuple,
    show_title,
)


def test_show_title_prints_without_ctx(capsys):
    assert show_title("hello") is None
    TitledInt(3).show()
    TitledFloat(0.5).show()
    assert capsys.readouterr().out.split() == ["hello", "3", "0.5"]


def test_show_title_on_matplotlib_axis_appends_lines():
    matplotlib = pytest.importorskip("matplotlib", reason="tiers-pipeline draws on an axis only when given one")

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    try:
        assert Category("cat").show(ctx=ax) is ax
        TitledStr("second").show(ctx=ax, color="red")
        assert ax.title.get_text() == "cat\nsecond"
    finally:
        plt.close(fig)


def test_show_title_on_pandas_series_adds_labelled_entries():
    pd = pytest.importorskip("pandas", reason="tiers-pipeline fills a Series only when given one")

    row = pd.Series({"category": "x"})
    row = Category("dog").show(ctx=row)  # label taken: a `_` is appended
    row = TitledFloat(1.5).show(ctx=row)
    row = MultiCategory(["a", "b"]).show(ctx=row, label="tags")
    assert row.to_dict() == {"category": "x", "category_": "dog", "text": "1.5", "tags": "a;b"}


def test_show_title_rejects_unknown_ctx():
    with pytest.raises(TypeError, match="ctx of type list"):
        show_title("x", ctx=[])


def test_titled_types_are_their_builtins():
    assert TitledInt(3) + 1 == 4 and isinstance(TitledInt(3), int)
    assert TitledStr("a b c").truncate(2) == "a b" and type(TitledStr("a b").truncate(1)) is TitledStr
    assert TitledTuple((1, 2)) == (1, 2) and TitledTuple(1, 2) == (1, 2) and TitledTuple(5) == (5,)
    assert Category("c") == "c" and Category._show_args == {"label": "category"}
    assert isinstance(Category("c"), ShowTitle) and list(MultiCategory(["a"])) == ["a"]


def test_multicategory_show_joins_with_separator(capsys):
    MultiCategory(["x", "y"]).show(sep=", ")
    assert capsys.readouterr().out.strip() == "x, y"


def test_importing_changes_nothing_global_and_stays_light():
    code = (
        "import sys, warnings\n"
        "filters = list(warnings.filters)\n"
        "import tiers.pipeline\n"
        "assert warnings.filters == filters\n"
        "heavy = [m for m in ('torch', 'matplotlib', 'pandas', 'numpy') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
