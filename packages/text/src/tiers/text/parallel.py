"""Tokenize many texts with several processes, and cache the results on disk.

`parallel_tokenize` tokenizes in this process beside `n_workers - 1` worker processes (the engine is
`tiers.text.process_engine`: forked workers inherit the texts and the built tokenizer, so only results travel) and
yields results in input order. The `tokenize_*` functions put texts from a list, a DataFrame, a CSV file or a folder
through it and return token counts. Folder and CSV results are cached on disk next to the input, with a fingerprint
of the tokenizer, the rules and the inputs: a second run with the same fingerprint reuses them, a changed rule set,
tokenizer or input file re-tokenizes. Cache writes are atomic (a temporary name, then a rename).

>>> toks = tokenize_texts(["Hello world!", "Bye."], n_workers=1)
>>> toks[0]
['xxbos', 'xxmaj', 'hello', 'world', '!']
"""

import ast
import functools
import hashlib
import inspect
import json
import os
import pickle
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tiers.data import MissingColumnError
from tiers.dispatch import L
from tiers.dispatch.files import atomic_write_bytes
from tiers.text.process_engine import check_workers, map_slices
from tiers.text.rules import FLD, defaults
from tiers.text.tokenizers import SpacyTokenizer, TokenizeWithRules

__all__ = [
    "fn_counter_pkl", "fn_lengths_pkl", "parallel_tokenize", "tokenize_texts", "tokenize_df", "tokenize_csv",
    "load_tokenized_csv", "tokenize_files", "tokenize_folder", "missing_texts", "MissingTextError",
]

fn_counter_pkl, fn_lengths_pkl = "counter.pkl", "lengths.pkl"
_fn_meta = "tokenize_meta.json"
_CACHE_VERSION = 1


def _check_workers(n_workers: int | None, where: str) -> int:
    return check_workers(n_workers, where, defaults.cpus)


def _tokenize_slice(twr: TokenizeWithRules, texts: Sequence[str]) -> list[list[str]]:
    return list(twr(texts))


def parallel_tokenize(items: Sequence[str], tok: Any = None, rules: Sequence[Callable] | None = None,
                      n_workers: int | None = None, post_rules: Sequence[Callable] | None = None,
                      **kwargs: Any) -> Iterator[tuple[int, list[str]]]:
    """Yield `(index, tokens)` for each of `items`, in order, tokenized by `tok` with `rules` in `n_workers` processes.

    `tok` defaults to `SpacyTokenizer(**kwargs)`; a tokenizer with a `setup` method is set up on `items` first.
    With `n_workers` 0 or 1 (or very few items) everything runs in this process; otherwise this process tokenizes
    alongside `n_workers - 1` worker processes. An error in a worker is re-raised here, with the worker's traceback.

    >>> list(parallel_tokenize(["a b"], n_workers=1, rules=[]))
    [(0, ['a', 'b'])]
    """
    n_workers = _check_workers(n_workers, "parallel_tokenize")
    items = items if isinstance(items, Sequence) and not isinstance(items, str) else list(items)
    if tok is None:
        tok = SpacyTokenizer(**kwargs)
    if hasattr(tok, "setup"):
        tok.setup(items, rules)
    twr = TokenizeWithRules(tok, rules, post_rules)
    return _run(items, twr, n_workers)


def _run(items: Sequence[str], twr: TokenizeWithRules, n_workers: int) -> Iterator[tuple[int, list[str]]]:
    if n_workers <= 1:
        # Lazily, text by text: a caller that stops early pays only for what it took.
        yield from enumerate(twr(items))
        return
    for start, toks in map_slices(items, functools.partial(_tokenize_slice, twr), n_workers, "parallel_tokenize"):
        yield from enumerate(toks, start)


def tokenize_texts(texts: Sequence[str], n_workers: int | None = None, rules: Sequence[Callable] | None = None,
                   tok: Any = None, post_rules: Sequence[Callable] | None = None) -> list[list[str]]:
    """Tokenize `texts` in parallel; return the token lists in order.

    >>> tokenize_texts(["One TWO"], n_workers=1)
    [['xxbos', 'xxmaj', 'one', 'xxup', 'two']]
    """
    return [toks for _, toks in parallel_tokenize(texts, tok, rules, n_workers, post_rules)]


def _join_texts(df: pd.DataFrame, mark_fields: bool) -> list[str]:
    """One text per row: the text columns joined, each introduced by `xxfld i` when `mark_fields`."""
    cols = [df.iloc[:, i].astype(str) for i in range(df.shape[1])]
    out = (f"{FLD} 1 " if mark_fields else "") + cols[0]
    for i, c in enumerate(cols[1:], start=2):
        out = out + (f" {FLD} {i} " if mark_fields else " ") + c
    return out.tolist()


def _text_cols(df: pd.DataFrame, text_cols: Any, where: str) -> list:
    cols = [text_cols] if isinstance(text_cols, (str, int)) else list(text_cols)
    names = [df.columns[c] if isinstance(c, int) and c not in df.columns else c for c in cols]
    missing = [c for c in names if c not in df.columns]
    if missing:
        raise MissingColumnError(f"{where}: text column(s) {missing!r} not in the DataFrame's columns "
                                 f"{list(df.columns)!r}; pass text_cols= (to TextBlock.from_df, Tokenizer.from_df or "
                                 f"{where}) naming one of them.")
    return names


class MissingTextError(ValueError):
    """Rows whose text is missing (None/NaN): tokenized, they would become the word `nan` and train with their labels."""


def _rows(labels: Sequence, n: int = 10) -> str:
    shown = ", ".join(map(repr, list(labels)[:n]))
    return shown + (f" and {len(labels) - n} more" if len(labels) > n else "")


def missing_texts(df: pd.DataFrame, text_cols: Any, where: str = "tokenize_df", drop: bool = False) -> pd.DataFrame:
    """`df` checked for missing texts (None/NaN) in `text_cols`: with `drop`, those rows are left out (a copy);
    otherwise a `MissingTextError` names the column, the rows (index labels) and the fix.

    >>> missing_texts(pd.DataFrame({"text": ["a", None]}), "text", drop=True)
      text
    0    a
    """
    names = _text_cols(df, text_cols, where)
    na = df[names].isna()
    bad = na.any(axis=1)
    if not bad.any():
        return df
    if drop:
        return df[~bad]
    cols = [c for c in names if na[c].any()]
    rows = list(df.index[na[cols[0]]])
    raise MissingTextError(
        f"{where}: the text column {cols[0]!r} has no text (None/NaN) in {len(rows)} of {len(df)} rows (index "
        f"{_rows(rows)}){f'; so do the columns {cols[1:]!r}' if len(cols) > 1 else ''}. Missing texts would be "
        f"tokenized as the word 'nan' and trained on. Fill or remove them (df.dropna(subset={names!r})), or pass "
        "drop_missing=True (to tokenize_df or TextDataLoaders.from_df/from_csv) to leave those rows out.")


_is_str = str.__instancecheck__  # about twice as fast as isinstance in a generator: it runs on every token


def _is_tokens(o: Any) -> bool:
    """Whether the cell `o` holds tokens already (a list, tuple, `L` or 1-d array) rather than a text."""
    return isinstance(o, (list, tuple, L)) or (isinstance(o, np.ndarray) and o.ndim == 1)


def _parse_printed(col: pd.Series) -> list[list[str]] | None:
    """The token lists of a column whose every text is a printed list of strings (`"['xxbos', 'hi']"`, what a
    tokenized DataFrame becomes after `to_csv` / `read_csv`), else None."""
    vals = col.tolist()
    if not vals or not all(isinstance(v, str) and v.lstrip().startswith("[") and v.rstrip().endswith("]")
                           for v in vals):
        return None
    try:
        out = [ast.literal_eval(v) for v in vals]  # literals only: never evaluates code
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    return out if all(isinstance(o, list) and all(isinstance(t, str) for t in o) for o in out) else None


def _column_tokens(df: pd.DataFrame, name: Any, where: str) -> list[list[str]] | None:
    """The token lists of the column `name` when it is pre-tokenized (cells are token lists, or printed token
    lists), None when it holds texts; a mix of the two, or tokens that are not strings, raise a `TypeError`."""
    col = df[name]
    is_tok = col.map(_is_tokens)
    if not is_tok.any():
        return _parse_printed(col)
    if not is_tok.all():
        texts, toks = list(df.index[~is_tok]), list(df.index[is_tok])
        raise TypeError(f"{where}: the text column {name!r} mixes token lists (rows {_rows(toks, 5)}) and texts "
                        f"(rows {_rows(texts, 5)}); give either texts (str) to tokenize, or token lists (as "
                        "tokenize_df returns) in every row.")
    out = [list(o) for o in col]
    for label, toks in zip(df.index, out):
        if not all(map(_is_str, toks)):
            bad = next(t for t in toks if not isinstance(t, str))
            raise TypeError(f"{where}: row {label!r} of the text column {name!r} is a token list holding "
                            f"{type(bad).__name__} {bad!r}; tokens must be strings (numericalized ids go to a model "
                            "directly, not through a text block).")
    return out


def tokenize_df(df: pd.DataFrame, text_cols: Any, n_workers: int | None = None,
                rules: Sequence[Callable] | None = None, mark_fields: bool | None = None, tok: Any = None,
                tok_text_col: str = "text", post_rules: Sequence[Callable] | None = None,
                drop_missing: bool = False) -> tuple[pd.DataFrame, Counter]:
    """Tokenize the `text_cols` of `df` (a column name or a list of them); return a copy holding the other columns
    plus `tok_text_col` (token lists) and `{tok_text_col}_length`, and a `Counter` of the tokens.

    Several text columns are joined into one text per row, each introduced by `xxfld i` (`mark_fields` defaults to
    True when there are several). Columns that already hold token lists (this function's own output, or those lists
    printed by a CSV round trip) are taken as they are, never tokenized again. Missing texts (None/NaN) raise a
    `MissingTextError` naming the rows, unless `drop_missing=True` leaves those rows out.

    >>> res, count = tokenize_df(pd.DataFrame({"text": ["Hi there"], "label": [1]}), "text", n_workers=1)
    >>> res["text"][0], count["there"]
    (['xxbos', 'xxmaj', 'hi', 'there'], 1)
    >>> tokenize_df(res, "text")[0]["text"][0]
    ['xxbos', 'xxmaj', 'hi', 'there']
    """
    names = _text_cols(df, text_cols, "tokenize_df")
    df = missing_texts(df, names, "tokenize_df", drop=drop_missing)
    mark_fields = len(names) > 1 if mark_fields is None else mark_fields
    pre = {c: _column_tokens(df, c, "tokenize_df") for c in names}
    given = {c: v for c, v in pre.items() if v is not None}  # the columns that hold token lists
    if not given:
        outputs = tokenize_texts(_join_texts(df[names], mark_fields), n_workers, rules, tok, post_rules)
    elif len(given) == len(pre):
        outputs = [[t for i, c in enumerate(names, start=1) for t in ([FLD, str(i)] if mark_fields else []) + given[c][r]]
                   for r in range(len(df))]
    else:
        raise TypeError(f"tokenize_df: the text columns {[c for c in names if pre[c] is not None]!r} hold token lists "
                        f"but {[c for c in names if pre[c] is None]!r} hold texts; tokenize the texts first "
                        "(tokenize_df on those columns) or pass only one kind.")
    other = [c for c in df.columns if c not in names and c != tok_text_col]
    res = df[other].copy()
    res[tok_text_col] = pd.Series(outputs, index=df.index, dtype=object)
    res[f"{tok_text_col}_length"] = [len(o) for o in outputs]
    count: Counter = Counter()
    for o in outputs:
        count.update(o)
    return res, count


# ---------------------------------------------------------------------------------------------------- caching
def _describe(o: Any) -> Any:
    """A JSON-able description of a rule or tokenizer that changes when its behaviour does."""
    if isinstance(o, functools.partial):
        return {"partial": _describe(o.func), "args": repr(o.args), "kw": repr(sorted(o.keywords.items()))}
    code = getattr(o, "__code__", None)
    if code is not None:
        return {"fn": f"{o.__module__}.{o.__qualname__}", "code": _code_hash(code),
                "defaults": repr(getattr(o, "__defaults__", None))}
    if callable(o) and not hasattr(o, "__dict__"):
        return {"builtin": f"{getattr(o, '__module__', '')}.{getattr(o, '__qualname__', repr(o))}"}
    state = o.__getstate__() if hasattr(type(o), "__getstate__") else vars(o)
    if not isinstance(state, dict):
        state = vars(o)
    simple = {k: v for k, v in state.items() if isinstance(v, (str, int, float, bool, type(None), list, tuple))}
    desc = {"cls": f"{type(o).__module__}.{type(o).__qualname__}", "state": repr(sorted(simple.items()))}
    top = sys.modules.get(type(o).__module__.split(".")[0])
    if isinstance(o, SpacyTokenizer):
        import spacy

        desc["spacy"] = spacy.__version__
    elif top is not None:
        desc["version"] = str(getattr(top, "__version__", ""))
    return desc


def _code_hash(code: Any) -> str:
    h = hashlib.sha1(code.co_code)
    for c in code.co_consts:
        # Nested functions: hash their code, not their repr (which holds a memory address).
        h.update(_code_hash(c).encode() if inspect.iscode(c) else repr(c).encode())
    h.update(repr(code.co_names).encode())
    return h.hexdigest()


def _fingerprint(tok: Any, rules: Sequence[Callable] | None, post_rules: Sequence[Callable] | None,
                 inputs: Any) -> str:
    twr = TokenizeWithRules(tok, rules, post_rules)
    desc = {"version": _CACHE_VERSION, "tok": _describe(tok), "rules": [_describe(r) for r in twr.rules],
            "post_rules": [_describe(r) for r in twr.post_rules], "inputs": inputs}
    return hashlib.sha1(json.dumps(desc, sort_keys=True, default=repr).encode()).hexdigest()


def _file_sig(f: Path) -> list:
    st = f.stat()
    return [st.st_size, st.st_mtime_ns]


def _write_atomic(path: Path, data: bytes) -> None:
    atomic_write_bytes(path, data)  # the one atomic writer (fsync, umask permissions, stale temps removed)


def _read_meta(path: Path) -> str | None:
    try:
        return json.loads(path.read_text())["fingerprint"]
    except (OSError, ValueError, KeyError):
        return None


# ---------------------------------------------------------------------------------------------------- CSV
def tokenize_csv(fname: str | os.PathLike, text_cols: Any, outname: str | os.PathLike | None = None,
                 n_workers: int | None = None, rules: Sequence[Callable] | None = None,
                 mark_fields: bool | None = None, tok: Any = None, header: Any = "infer", chunksize: int = 50000,
                 post_rules: Sequence[Callable] | None = None, skip_if_exists: bool = True) -> Path:
    """Tokenize the `text_cols` of the CSV `fname` in chunks into `outname` (default `<stem>_tok.csv`, tokens joined by
    spaces in a `text` column, plus `text_length`) and save the token counts next to it (`<outname stem>_counter.pkl`).

    With `skip_if_exists`, a previous result with the same input, tokenizer and rules is reused. Returns `outname`.
    """
    fname = Path(fname)
    if not fname.is_file():
        raise FileNotFoundError(f"tokenize_csv: no CSV file at {str(fname)!r}.")
    outname = Path(outname) if outname is not None else fname.parent / f"{fname.stem}_tok.csv"
    cnt_path, meta_path = _csv_side_files(outname)
    if tok is None:
        tok = SpacyTokenizer()
    fp = _fingerprint(tok, rules, post_rules, {"csv": [str(fname.resolve()), *_file_sig(fname)],
                                               "cols": repr(text_cols), "mark": mark_fields, "header": repr(header)})
    if skip_if_exists and outname.is_file() and cnt_path.is_file() and _read_meta(meta_path) == fp:
        return outname
    meta_path.unlink(missing_ok=True)
    count: Counter = Counter()
    fd, tmp = tempfile.mkstemp(dir=outname.parent, prefix=f".{outname.name}.", suffix=".tmp")
    os.close(fd)
    try:
        for i, chunk in enumerate(pd.read_csv(fname, header=header, chunksize=chunksize)):
            res, c = tokenize_df(chunk, text_cols, n_workers, rules, mark_fields, tok, post_rules=post_rules)
            res["text"] = [" ".join(t.replace(" ", "▁") for t in o) for o in res["text"]]
            res.to_csv(tmp, index=False, header=(i == 0), mode="w" if i == 0 else "a")
            count.update(c)
        os.replace(tmp, outname)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _write_atomic(cnt_path, pickle.dumps(count))
    _write_atomic(meta_path, json.dumps({"fingerprint": fp}).encode())
    return outname


def _csv_side_files(outname: Path) -> tuple[Path, Path]:
    return outname.parent / f"{outname.stem}_counter.pkl", outname.parent / f"{outname.stem}_meta.json"


def load_tokenized_csv(fname: str | os.PathLike) -> tuple[pd.DataFrame, Counter]:
    """Load a CSV written by `tokenize_csv`: the DataFrame with token lists in `text`, and the token `Counter`."""
    fname = Path(fname)
    cnt_path, _ = _csv_side_files(fname)
    if not cnt_path.is_file():
        raise FileNotFoundError(f"load_tokenized_csv: no counter file {str(cnt_path)!r} next to {str(fname)!r}; "
                                "produce both with tokenize_csv.")
    out = pd.read_csv(fname, keep_default_na=False)
    out["text"] = [t.split(" ") if t else [] for t in out["text"]]
    return out, pickle.loads(cnt_path.read_bytes())


# ---------------------------------------------------------------------------------------------------- files
def _read_text(path: str | os.PathLike, encoding: str = "utf8") -> str:
    """The text of the file `path` read with `encoding`; a `UnicodeDecodeError` gets a note naming the file and the
    `encoding=` argument to pass (the folder-of-texts functions all take it)."""
    try:
        return Path(path).read_text(encoding=encoding)
    except UnicodeDecodeError as e:
        e.add_note(f"while reading the text file {str(path)!r} as {encoding}: pass the files' encoding, e.g. "
                   "encoding='latin-1', to TextDataLoaders.from_folder / TextBlock.from_folder / Tokenizer.from_folder "
                   "/ tokenize_folder (or convert the file to UTF-8).")
        raise


def _tok_files_batch(twr: TokenizeWithRules, encoding: str, batch: Sequence[tuple[str, str]]
                     ) -> tuple[list[int], Counter]:
    texts = [_read_text(src, encoding) for src, _ in batch]
    lengths: list = []
    count: Counter = Counter()
    for (_, dst), toks in zip(batch, twr(texts)):
        # Token files are space-separated, so a space inside a token is written as the post-rule's `▁`.
        Path(dst).write_text(" ".join(t.replace(" ", "▁") for t in toks), encoding="utf-8")
        lengths.append(len(toks))
        count.update(toks)
    return lengths, count


def tokenize_files(files: Sequence[str | os.PathLike], path: str | os.PathLike, output_dir: str | os.PathLike,
                   output_names: Sequence[str] | None = None, n_workers: int | None = None,
                   rules: Sequence[Callable] | None = None, tok: Any = None, encoding: str = "utf8",
                   skip_if_exists: bool = False, post_rules: Sequence[Callable] | None = None) -> Path:
    """Tokenize text `files` (under `path`) into `output_dir`, one space-separated token file per input (named by
    `output_names`, default the path relative to `path`), with `counter.pkl` (token counts) and `lengths.pkl`
    (tokens per file, keyed by output name).

    The folder is built under a temporary name and renamed into place, so it is complete or absent. With
    `skip_if_exists`, an existing folder made from the same files, tokenizer and rules is reused. Returns `output_dir`.
    """
    n_workers = _check_workers(n_workers, "tokenize_files")
    path, output_dir = Path(path), Path(output_dir)
    paths = [Path(f) for f in files]
    if output_names is None:
        output_names = [f.relative_to(path).as_posix() if f.is_relative_to(path) else f.name for f in paths]
    if len(output_names) != len(paths):
        raise ValueError(f"tokenize_files: {len(output_names)} output_names for {len(paths)} files; give one per file.")
    if tok is None:
        tok = SpacyTokenizer()
    inputs = [[str(n), *_file_sig(f)] for f, n in zip(paths, output_names)]
    fp = _fingerprint(tok, rules, post_rules, {"files": inputs, "encoding": encoding})
    if skip_if_exists and output_dir.is_dir() and _read_meta(output_dir / _fn_meta) == fp:
        return output_dir
    if hasattr(tok, "setup"):
        tok.setup([_read_text(f, encoding) for f in paths], rules)
    twr = TokenizeWithRules(tok, rules, post_rules)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=output_dir.parent, prefix=f".{output_dir.name}.tmp"))
    try:
        dsts = [tmp / n for n in output_names]
        for d in {d.parent for d in dsts}:
            d.mkdir(parents=True, exist_ok=True)
        pairs = [(str(f), str(d)) for f, d in zip(paths, dsts)]
        lengths_list: list[int] = []
        count: Counter = Counter()
        work = functools.partial(_tok_files_batch, twr, encoding)
        for _, (ls, c) in map_slices(pairs, work, n_workers, "tokenize_files"):
            lengths_list.extend(ls)
            count.update(c)
        lengths = {str(n): ln for n, ln in zip(output_names, lengths_list)}
        (tmp / fn_counter_pkl).write_bytes(pickle.dumps(count))
        (tmp / fn_lengths_pkl).write_bytes(pickle.dumps(lengths))
        (tmp / _fn_meta).write_text(json.dumps({"fingerprint": fp, "tok": repr(tok)}))
        _swap_in(tmp, output_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return output_dir


def _swap_in(tmp: Path, output_dir: Path) -> None:
    """Put the finished folder `tmp` at `output_dir`, moving a stale one aside first."""
    old = None
    if output_dir.exists():
        old = output_dir.parent / f".{output_dir.name}.old{os.getpid()}"
        os.replace(output_dir, old)
    os.replace(tmp, output_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _text_files(path: Path, extensions: Iterable[str], folders: Iterable[str] | None) -> list[Path]:
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    folders = None if folders is None else set(folders)
    res: list = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        r = Path(root)
        if folders is not None and r != path and r.relative_to(path).parts[0] not in folders:
            continue
        res.extend(r / f for f in sorted(files) if Path(f).suffix.lower() in exts)
    return res


def tokenize_folder(path: str | os.PathLike, extensions: Sequence[str] | None = None,
                    folders: Sequence[str] | None = None, output_dir: str | os.PathLike | None = None,
                    skip_if_exists: bool = True, n_workers: int | None = None,
                    rules: Sequence[Callable] | None = None, tok: Any = None, encoding: str = "utf8",
                    post_rules: Sequence[Callable] | None = None) -> Path:
    """Tokenize every text file (`extensions`, default `.txt`) under `path` (only in the sub-`folders` if given) into
    `output_dir` (default `<path>_tok`), mirroring the tree; see `tokenize_files` for what is written and cached.
    Returns `output_dir`.
    """
    path = Path(path)
    if not path.is_dir():
        raise NotADirectoryError(f"tokenize_folder: {str(path)!r} is not a folder of text files.")
    output_dir = Path(output_dir) if output_dir is not None else path.parent / f"{path.name}_tok"
    files = _text_files(path, extensions or [".txt"], folders)
    if not files:
        raise FileNotFoundError(f"tokenize_folder: no files with extensions {list(extensions or ['.txt'])!r} "
                                f"under {str(path)!r}" + (f" in folders {list(folders)!r}" if folders else "") + ".")
    return tokenize_files(files, path, output_dir, n_workers=n_workers, rules=rules, tok=tok, encoding=encoding,
                          skip_if_exists=skip_if_exists, post_rules=post_rules)
