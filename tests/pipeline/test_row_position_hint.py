"""A getter indexing a pandas row by position (`x[0]`, pandas >= 3): the KeyError gets a note naming `x.iloc[0]` and
the column name (audit 3, E25); other KeyErrors get no such note."""

import pytest

from tiers.pipeline import Pipeline, Transform

pd = pytest.importorskip("pandas")  # tiers-pipeline works without pandas (its own venv has none)


def _notes(f, x):
    with pytest.raises(KeyError) as info:
        f(x)
    return "\n".join(getattr(info.value, "__notes__", []))


def test_a_positional_key_on_a_row_names_iloc_and_the_column():
    row = pd.DataFrame({"fname": ["a.png"], "label": ["cat"]}).iloc[0]
    notes = _notes(Pipeline([lambda x: x[1]]), row)
    assert "indexed by column names ['fname', 'label']" in notes
    assert "Use x.iloc[1] or the column name, x['label']" in notes
    assert "x.iloc[-1] or the column name, x['label']" in _notes(Transform(lambda x: x[-1]), row)


@pytest.mark.parametrize("x, key", [
    (pd.Series([1, 2], index=[10, 20]), 0),           # integer labels: a real missing label, not a position
    (pd.DataFrame({"a": [1]}).iloc[0], 5),             # a position out of range
    (pd.DataFrame({"a": [1]}).iloc[0], "b"),           # a missing column name
    ({"a": 1}, 0),                                     # not a pandas row
])
def test_other_key_errors_get_no_row_hint(x, key):
    assert "pandas Series" not in _notes(Transform(lambda o: o[key]), x)
