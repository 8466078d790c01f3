"""Tables: `read_csv` for the `from_csv` constructors (honours `encoding` and names the file when it cannot be
decoded; pandas' own error says neither which file nor what to do), and `get_empty_df`, the empty rows a table of
samples is filled in."""

import os
from typing import TYPE_CHECKING, Any

from tiers.dispatch.extras import require

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["get_empty_df", "read_csv"]


def read_csv(fname: str | os.PathLike, encoding: str | None = None, **kwargs: Any) -> "pd.DataFrame":
    """`pandas.read_csv(fname, encoding=encoding, **kwargs)` (UTF-8 when `encoding` is None). A file that is not in
    that encoding raises `UnicodeDecodeError` naming the file, the byte position and the fix (`encoding="latin-1"`
    for a Windows/Excel export, for instance); a missing file raises `FileNotFoundError` naming it.

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "t.csv"; _ = f.write_bytes("name\\ncaf\\xe9\\n".encode("latin-1"))
    >>> read_csv(f, encoding="latin-1")["name"][0]
    'café'
    """
    pd = require("pandas", dist="tiers-data", extra="plots", what="read_csv")

    if not os.path.isfile(fname):
        raise FileNotFoundError(f"read_csv: no file at {os.fspath(fname)!r}" +
                                (" (it is a folder; name the CSV file inside it)." if os.path.isdir(fname) else "."))
    enc = encoding or "utf-8"
    try:
        return pd.read_csv(fname, encoding=enc, **kwargs)
    except UnicodeDecodeError as e:
        raise UnicodeDecodeError(
            e.encoding, e.object, e.start, e.end,
            f"{e.reason}: the file {os.fspath(fname)!r} is not valid {enc} (byte {e.start}); pass its encoding, e.g. "
            f"from_csv(..., encoding='latin-1') or encoding='cp1252' for a Windows/Excel export") from e
    except LookupError as e:
        raise LookupError(f"read_csv: unknown encoding {encoding!r} for {os.fspath(fname)!r}; use a Python codec "
                          "name such as 'utf-8', 'latin-1' or 'cp1252'.") from e


def get_empty_df(n: int) -> list:
    """`n` empty rows (pandas Series of an `n`-row DataFrame with no columns), the contexts `show_batch` fills
    column by column when it prints samples as a table.

    >>> [len(r) for r in get_empty_df(2)]
    [0, 0]
    """
    pd = require("pandas", dist="tiers-data", extra="plots", what="get_empty_df")

    df = pd.DataFrame(index=range(n))
    return [df.iloc[i] for i in range(n)]
