"""Target transforms: class labels (`Categorize`, `MultiCategorize`, `OneHotEncode`, `EncodedMultiCategorize`) and
regression values (`RegressionSetup`), plus `CategoryMap` and `get_c`.

Each target becomes a semantic tensor (`TensorCategory`, `TensorMultiCategory`, or a plain float tensor for
regression) so the training layer can pick a loss by dispatching on it; this layer knows nothing of losses.
"""

import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from tiers.dispatch import L, is_listy
from tiers.pipeline import Category, DisplayedTransform, MultiCategory, TitledFloat, TitledTuple
from tiers.tensors import TensorCategory, TensorMultiCategory, tensor

if TYPE_CHECKING:
    from tiers.data.dataloaders import DataLoaders

__all__ = ["UnknownLabelError", "NoVocabError", "CategoryMap", "Categorize", "MultiCategorize", "OneHotEncode", "EncodedMultiCategorize",
           "RegressionSetup", "get_c", "one_hot", "one_hot_decode"]


class UnknownLabelError(KeyError):
    "A label that is not in the vocabulary (a KeyError whose message prints as written, without quotes)."

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class NoVocabError(ValueError, TypeError):
    """`Categorize`/`MultiCategorize` used before they have a vocabulary (not set up, no `vocab=`): a ValueError, and
    a TypeError as indexing the missing vocabulary was."""


def _is_categorical(col) -> bool:
    return str(getattr(col, "dtype", "")) == "category" and hasattr(col, "cat")


def _key(o):
    "A hashable label: a 0-d tensor or array becomes its Python value."
    if isinstance(o, Tensor) and o.ndim == 0:
        return o.item()
    if hasattr(o, "item") and getattr(o, "ndim", None) == 0:
        return o.item()
    return o


class CategoryMap(L):
    """The vocabulary of a categorical variable: its distinct values (NaN dropped; sorted when `sort`, and in the
    categories' order for a pandas categorical) with `'#na#'` first when `add_na`. `o2i` maps a value to its index
    (unknown values map to 0, `'#na#'`, when `add_na`). With `strict`, a pandas categorical keeps only the categories
    that occur.

    >>> v = CategoryMap(["dog", "cat", "dog"])
    >>> list(v), v.o2i["dog"]
    (['cat', 'dog'], 1)
    """

    o2i: dict
    add_na: bool

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, col: Iterable[Any], sort: bool = True, add_na: bool = False, strict: bool = False):
        if isinstance(col, CategoryMap):
            super().__init__(list(col.items), use_list=True)
            self.o2i, self.add_na = (defaultdict(int, col.o2i) if col.add_na else dict(col.o2i)), col.add_na
            return
        if _is_categorical(col):
            ser: Any = col  # a pandas categorical Series (pandas has no type information here)
            items = list(ser.cat.categories)
            if strict:
                present = set(ser.dropna().unique())
                items = [o for o in items if o in present]
        else:
            col = col if hasattr(col, "unique") else L(col, use_list=True)
            items = [_key(o) for o in col.unique()]
            items = [o for o in dict.fromkeys(items) if o == o]  # o != o only for NaN
            if sort:
                try:
                    items = sorted(items)
                except TypeError as e:
                    kinds = sorted({type(o).__name__ for o in items})
                    raise TypeError(f"CategoryMap: cannot sort labels of mixed types {kinds}; make them one type "
                                    "or pass sort=False.") from e
        if add_na:
            items = ["#na#"] + items
        super().__init__(items, use_list=True)
        idx = {v: i for i, v in enumerate(self.items)}
        self.o2i = defaultdict(int, idx) if add_na else idx
        self.add_na = add_na

    def _new(self, items, *args, **kwargs):
        return L(items, *args, **kwargs)

    def map_objs(self, objs: Iterable[Any]) -> list:
        "The indices of the values `objs`."
        return [self.o2i[_key(o)] for o in objs]

    def map_ids(self, ids: Iterable[Any]) -> list:
        "The values at indices `ids`."
        return [self.items[int(i)] for i in ids]

    def __eq__(self, other) -> bool:
        return list(self.items) == list(other)

    __hash__ = None

    def __repr__(self) -> str:
        return f"CategoryMap({list(self.items)!r})"


def _warn_label_collisions(who: str, vocab: Iterable[Any]) -> None:
    """Warn when labels learned from the data are the same text but for surrounding whitespace ('cat' and 'cat '
    from a messy CSV): they would be separate classes. Case is left alone: 'US' and 'us' can be different classes."""
    groups: dict[str, list[str]] = defaultdict(list)
    for o in vocab:
        if isinstance(o, str) and o != "#na#":
            groups[o.strip()].append(o)
    clashes = [g for g in groups.values() if len(g) > 1]
    if clashes:
        shown = "; ".join(repr(g) for g in clashes[:5]) + (f" ... ({len(clashes)} groups)" if len(clashes) > 5 else "")
        warnings.warn(f"{who}: labels that differ only by surrounding whitespace are separate classes: {shown}. If "
                      "they are the same class, strip the labels first (e.g. df[col] = df[col].str.strip(), or "
                      "get_y=lambda r: r[col].strip()).", stacklevel=3)


def _warn_float_labels(who: str, vocab: Sequence[Any]) -> None:
    "Warn when the class labels are numbers with fractions: a regression target read as one class per value."
    vals = [o for o in vocab if o != "#na#"]
    if vals and all(isinstance(o, float | np.floating) for o in vals) and any(not float(o).is_integer() for o in vals):
        warnings.warn(f"{who}: the {len(vals)} labels are fractional numbers ({_few(vals)}), each one a class; if "
                      "they are a quantity to predict, use RegressionBlock() (y_block=RegressionBlock() in the "
                      "from_df/from_csv factories) instead of a CategoryBlock.", stacklevel=3)


def _few(vals: Sequence[Any], k: int = 5) -> str:
    return ", ".join(map(repr, vals[:k])) + (", ..." if len(vals) > k else "")


def _unknown_hint(k: Any, vocab: Sequence[Any]) -> str:
    "Why a label may be unknown: the same text with other surrounding whitespace, or a fractional number."
    near = [o for o in vocab if isinstance(k, str) and isinstance(o, str) and o.strip() == k.strip()]
    if near:
        return (f" It differs from the class {near[0]!r} only by surrounding whitespace: strip the labels (e.g. "
                "df[col] = df[col].str.strip()).")
    if isinstance(k, float | np.floating) and not float(k).is_integer():
        return " The label is a fractional number: for a quantity to predict use RegressionBlock(), not CategoryBlock."
    return ""


class Categorize(DisplayedTransform):
    """Encode a single label as the index of its class in `vocab` (a `TensorCategory`); decode back to a `Category`.
    Without a `vocab`, `setup` learns it from the training items (sorted). A label not in the vocabulary raises a
    KeyError naming it, unless `add_na`, which maps it to the class `'#na#'` (index 0). `c` is the number of classes.

    >>> tfm = Categorize(); tfm.setup(["dog", "cat", "dog"])
    >>> tfm("dog"), tfm.decode(tfm("dog"))
    (TensorCategory(1), 'dog')
    """

    order = 1

    def __init__(self, vocab: Iterable[Any] | None = None, sort: bool = True, add_na: bool = False):
        self.sort, self.add_na = sort, add_na
        self.vocab = None if vocab is None else CategoryMap(vocab, sort=sort, add_na=add_na)

    @property
    def c(self) -> int | None:
        "The number of classes (None before setup)."
        return None if self.vocab is None else len(self.vocab)

    @property
    def refuses_missing(self) -> bool:
        "A missing (NaN/None) label is refused when the datasets are built, unless `add_na` gives it a class."
        return not self.add_na

    def setups(self, dsets):
        if self.vocab is None and dsets is not None:
            if len(dsets) == 0:
                raise ValueError(f"{type(self).__name__}: no training items to learn the classes from; pass "
                                 "vocab=[...] or give the training set some items.")
            self.vocab = CategoryMap(dsets, sort=self.sort, add_na=self.add_na)
            _warn_label_collisions(type(self).__name__, self.vocab)
            _warn_float_labels(type(self).__name__, self.vocab)
            n = len(self.vocab) - self.add_na
            if n > 1 and n == len(dsets) and isinstance(dsets[0], PurePath):
                warnings.warn(f"{type(self).__name__}: the labels are file paths and each of the {n} training items "
                              "is its own class; did you forget get_y (e.g. get_y=parent_label)?", stacklevel=2)

    def _check(self):
        if self.vocab is None:
            raise NoVocabError(f"{type(self).__name__} has no vocabulary yet: set it up on the training labels first "
                               "(tfm.setup(labels); building through a DataBlock or Datasets does it) or pass "
                               "vocab=[...].")

    def encodes(self, o):
        self._check()
        k = _key(o)
        try:
            return TensorCategory(self.vocab.o2i[k])
        except KeyError:
            some = list(self.vocab.items[:10])
            raise UnknownLabelError(f"Label {k!r} is not among the {len(self.vocab)} classes seen when the vocabulary was "
                           f"made ({some}{'...' if len(self.vocab) > 10 else ''}); add it to vocab=[...], or pass "
                           f"add_na=True to map unknown labels to '#na#'.{_unknown_hint(k, self.vocab)}") from None

    def decodes(self, o):
        self._check()
        return Category(self.vocab[int(o)])


class MultiCategorize(Categorize):
    """Encode a list of labels as the indices of their classes (a `TensorMultiCategory`); decode back to a
    `MultiCategory`. Without `vocab`, `setup` learns the sorted set of all labels of the training items."""

    order = 1
    c = None  # the OneHotEncode after it carries the number of classes, so `dls.c` finds one value
    refuses_missing = False  # a list of labels; a missing cell reads as no labels

    def __init__(self, vocab: Iterable[Any] | None = None, add_na: bool = False):
        super().__init__(vocab=vocab, add_na=add_na, sort=vocab is None)

    def setups(self, dsets):
        if self.vocab is not None or dsets is None:
            return
        vals = set()
        for b in dsets:
            vals.update(_key(o) for o in b)
        if not vals:
            raise ValueError("MultiCategorize: the training items have no labels to learn the classes from; pass "
                             "vocab=[...].")
        self.vocab = CategoryMap(list(vals), add_na=self.add_na)
        _warn_label_collisions(type(self).__name__, self.vocab)

    def encodes(self, o):
        self._check()
        labels = [_key(x) for x in o]
        unknown = [x for x in labels if x not in self.vocab.o2i]
        if unknown and not self.add_na:
            raise UnknownLabelError(f"Labels {unknown} are not among the classes seen when the vocabulary was made; add them "
                           "to vocab=[...], or pass add_na=True to map them to '#na#'."
                           f"{_unknown_hint(unknown[0], self.vocab)}")
        return TensorMultiCategory(torch.tensor([self.vocab.o2i[x] for x in labels], dtype=torch.long))

    def decodes(self, o):
        self._check()
        return MultiCategory([self.vocab[int(i)] for i in o])


def one_hot(x: int | Iterable[int] | Tensor, c: int) -> Tensor:
    "A float vector of length `c` with ones at the indices `x`."
    res = torch.zeros(c)
    idx = x if isinstance(x, Tensor) else torch.tensor(list(L(x)), dtype=torch.long)
    if idx.dtype is torch.bool:
        raise TypeError(f"one_hot: {x!r} is a boolean mask, already one-hot; pass the class indices instead.")
    if idx.numel():
        idx = idx.long().flatten()
        bad = [int(i) for i in idx if not 0 <= int(i) < c]
        if bad:
            raise IndexError(f"one_hot: class indices {bad} are out of range for {c} classes.")
        res[idx] = 1.0
    return res


def one_hot_decode(x: Iterable[Any], vocab: Sequence[Any] | None = None) -> L:
    "The indices (or the `vocab` entries) where the one-hot vector `x` is on (above 0.5)."
    idxs = [i for i, v in enumerate(x) if float(v) > 0.5]
    return L(vocab[i] for i in idxs) if vocab is not None else L(idxs)


class OneHotEncode(DisplayedTransform):
    """Turn the class indices of a `TensorMultiCategory` into a one-hot float vector of length `c` (read from the
    `vocab` of the transforms before it when not given), and back."""

    order = 2

    def __init__(self, c: int | None = None):
        self.c = c

    def setups(self, dsets):
        if self.c is None:
            vocab = getattr(dsets, "vocab", None)
            if vocab is None:
                raise ValueError("OneHotEncode: cannot tell the number of classes: no vocab before it; pass c=.")
            self.c = len(vocab[-1] if is_listy(vocab) and vocab and is_listy(vocab[-1]) else vocab)

    def encodes(self, o: Tensor | list | tuple):
        if self.c is None:
            raise ValueError("OneHotEncode has no number of classes: pass c= or set it up after MultiCategorize.")
        return TensorMultiCategory(one_hot(o, self.c))

    def decodes(self, o: Tensor):
        # Any one-hot vector (float, int or bool; typed or plain) decodes to the indices that are on: a plain
        # tensor left as it is would read as a list of indices and name the wrong classes.
        if o.ndim != 1:
            raise ValueError(f"OneHotEncode.decode expects one one-hot vector (1-d), got shape {tuple(o.shape)}; "
                             "decode the samples of a batch one by one.")
        if self.c is not None and len(o) != self.c:
            raise ValueError(f"OneHotEncode.decode: a vector of length {len(o)} is not a one-hot of the {self.c} "
                             "classes this transform encodes.")
        return TensorMultiCategory(torch.tensor(list(one_hot_decode(o)), dtype=torch.long))


class EncodedMultiCategorize(Categorize):
    "For labels already one-hot encoded: make them a float `TensorMultiCategory`; decode to the `vocab` names."

    order = 1
    c = Categorize.c
    refuses_missing = False  # one-hot vectors are checked by their own getter, not as labels

    def __init__(self, vocab: Iterable[Any] | None):
        super().__init__(vocab=vocab, sort=False)

    def setups(self, dsets):
        pass

    def encodes(self, o):
        return TensorMultiCategory(tensor(o).float())

    def decodes(self, o):
        return MultiCategory(one_hot_decode(o, self.vocab))


def _number(o):
    "`o`, or the float that the text `o` spells ('3.5' read from a CSV as text); other text is refused by name."
    if not isinstance(o, str | bytes):
        return o
    try:
        return float(o)
    except ValueError:
        raise ValueError(f"RegressionSetup: the target {o!r} is not a number; a regression target must be a number, "
                         "or text that float() reads (such as '3.5'). Fix or drop that value in the data (e.g. "
                         "pd.to_numeric(df[col], errors='coerce') then dropna), or use CategoryBlock if it is a class "
                         "label.") from None


def _float_target(o) -> Tensor:
    "A regression target (a number, text spelling one, or a list/array/tensor of them) as a float tensor."
    if isinstance(o, str | bytes):
        return torch.tensor(_number(o))
    if isinstance(o, list | tuple) and any(isinstance(x, str | bytes) for x in o):
        o = [_number(x) for x in o]
    elif isinstance(o, np.ndarray) and o.dtype.kind in "USO":
        o = np.array([_number(x) for x in o.ravel().tolist()], dtype=np.float64).reshape(o.shape)
    return tensor(o).float()


class RegressionSetup(DisplayedTransform):
    """Make regression targets float tensors (plain `Tensor`s); text that spells a number ('3.5', as a CSV read as
    text gives) is read with `float()`, other text is refused naming the value. `c`, the number of values per
    target, is read from the first training item when not given. Decodes to `TitledFloat` / `TitledTuple` for
    display. When the datasets are built, missing (NaN/None) targets raise `MissingValueError` and infinite or
    non-numeric ones `NonFiniteValueError`, naming the rows."""

    refuses_missing = True  # a NaN target makes every weight NaN at the first step
    refuses_nonfinite = True  # so does an infinite one; text must spell a number

    def __init__(self, c: int | None = None):
        self.c = c

    def encodes(self, o):
        return _float_target(o)

    def decodes(self, o: Tensor):
        # A tuple, not a generator: TitledTuple would hold the generator itself as its one element.
        return TitledFloat(o.item()) if o.ndim == 0 else TitledTuple(tuple(float(v) for v in o.flatten()))

    def setups(self, dsets):
        if self.c is not None or dsets is None or len(dsets) == 0:
            return
        o = dsets[0]
        self.c = len(o) if hasattr(o, "__len__") and not isinstance(o, str) else 1


def _int_c(c) -> int | None:
    "An output count from a `c` attribute: the int itself, or the last int of several (one per target)."
    if isinstance(c, bool) or not isinstance(c, int | L | list | tuple):
        return None
    if isinstance(c, int):
        return c
    cs = [o for o in c if isinstance(o, int) and not isinstance(o, bool)]
    return cs[-1] if cs else None


def get_c(dls: "DataLoaders") -> int:
    """The number of model outputs a task needs: `dls.c` (found on the targets' transforms), else `c` of the
    training loader's `after_item` transforms (an item transform that knows the output size, e.g. of points), else
    the length of `dls.vocab` (its last element when it holds one vocabulary per target)."""
    c = _int_c(getattr(dls, "c", None))
    if c is not None:
        return c
    train = getattr(dls, "train", None)
    c = _int_c(getattr(getattr(train, "after_item", None), "c", None))
    if c is not None:
        return c
    vocab = getattr(dls, "vocab", None)
    if vocab is None:
        raise AttributeError("get_c: the DataLoaders have no `c` (nor their item transforms) and no `vocab`; pass "
                             "the number of outputs yourself (for example n_out=...).")
    if len(vocab) and is_listy(vocab[-1]):
        vocab = vocab[-1]
    return len(vocab)
