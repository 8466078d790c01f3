"""From batches back to samples: `batch_to_samples`, and the decoding and showing every loader offers
(`decode`, `decode_batch`, `show_batch`, `show_results`), which `TfmdDL` refines with its transforms' types."""

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

from torch import Tensor

from tiers.dispatch import L, detuplify
from tiers.tensors import to_cpu

__all__ = ["batch_to_samples", "ShowBatchMixin"]


def _is_column(o) -> bool:
    "A collated batch element (not a structure to split): a tensor, or a list of non-tensor values (strings...)."
    if isinstance(o, Tensor):
        return True
    return isinstance(o, list) and not any(isinstance(x, Tensor | tuple | list) for x in o)


def batch_to_samples(b: Tensor | Sequence[Any], max_n: int = 9) -> L:
    """Turn a batch into a list of (at most `max_n`) samples with the same structure as the batch, keeping types.

    >>> import torch
    >>> batch_to_samples((torch.tensor([1, 2]), ["a", "b"]))
    (#2) [(tensor(1), 'a'), (tensor(2), 'b')]
    """
    if _is_column(b):
        return L(list(b[:max_n]))
    cols = [batch_to_samples(o, max_n) for o in b]
    return L(tuple(s) for s in zip(*cols))


def _decoder(f):
    "The `decode` of a step that has one (a Pipeline), else the identity."
    d = getattr(f, "decode", None)
    return d if callable(d) else (lambda o, **kwargs: o)


class ShowBatchMixin:
    "Decoding and showing batches, for any loader with `after_batch`, `after_item`, `before_batch` and a dataset."

    if TYPE_CHECKING:  # supplied by the loader this is mixed into
        dataset: Any
        before_batch: Any
        after_item: Any
        after_batch: Any
        bs: int | None
        one_batch: Callable[[], Any]
        get_idxs: Callable[[], Iterable]

        @property
        def n_inp(self) -> int: ...

    def decode(self, b: Any) -> Any:
        "Undo `after_batch` on the batch `b` (when it can be undone) and move it to the CPU."
        return to_cpu(_decoder(self.after_batch)(b))

    def _decode_batch(self, b, max_n: int = 9, full: bool = True) -> L:
        ds_decode = getattr(self.dataset, "decode", None)
        before, item = _decoder(self.before_batch), _decoder(self.after_item)

        def f(s):
            s = item(before(s))
            return ds_decode(s, full=full) if callable(ds_decode) else s

        return L(f(s) for s in batch_to_samples(b, max_n=max_n))

    def decode_batch(self, b: Any, max_n: int = 9, full: bool = True) -> L:
        "Decode the batch `b` into (at most `max_n`) samples, through the item transforms and the dataset."
        return self._decode_batch(self.decode(b), max_n, full)

    def _pre_show_batch(self, b, max_n: int = 9):
        b = self.decode(b)
        if hasattr(b, "show"):
            return b, None, None
        its = self._decode_batch(b, max_n, full=False)
        if not isinstance(b, tuple | list):
            b, its = [b], L((o,) for o in its)
        return detuplify(b[: self.n_inp]), detuplify(b[self.n_inp:]), its

    def show_batch(self, b: Any = None, max_n: int = 9, ctxs: Sequence[Any] | None = None, show: bool = True,
                   unique: bool = False, **kwargs: Any) -> tuple | None:
        """Show (at most `max_n`) samples of the batch `b` (default: `one_batch()`); with `unique`, the same item
        `max_n` times (to see random augmentations). With `show=False`, return `(inputs, targets, samples)`; when
        shown, return nothing (a notebook cell ending with it shows the figure or table once, no list of axes)."""
        from tiers.data.show import show_batch

        if b is None:
            if unique:
                old = self.__dict__.get("get_idxs")
                self.get_idxs = lambda: [0] * (self.bs or 1)
                try:
                    b = self.one_batch()
                finally:
                    if old is None:
                        del self.get_idxs
                    else:
                        self.get_idxs = old
            else:
                b = self.one_batch()
        if not show:
            return self._pre_show_batch(b, max_n=max_n)
        show_batch(*self._pre_show_batch(b, max_n=max_n), ctxs=ctxs, max_n=max_n, **kwargs)
        return None

    def show_results(self, b: Any, out: Any, max_n: int = 9, ctxs: Sequence[Any] | None = None, show: bool = True,
                     **kwargs: Any) -> tuple | None:
        """Show the samples of batch `b` next to the decoded model outputs `out` (predictions as the targets' types).
        With `show=False`, return `(inputs, targets, samples, outputs)`; when shown, return nothing."""
        from tiers.data.show import show_results

        # with show=False, show_batch returns the (inputs, targets, samples) it would show
        x, y, its = cast(tuple, self.show_batch(b, max_n=max_n, show=False))
        outs = tuple(out) if isinstance(out, tuple | list) else (out,)
        b_out = type(b)(tuple(b[: self.n_inp]) + outs) if isinstance(b, tuple) else (*b[: self.n_inp], *outs)
        x1, y1, outs_its = cast(tuple, self.show_batch(b_out, max_n=max_n, show=False))
        res = (x, x1, None, None) if its is None else (x, y, its, L(o[self.n_inp:] for o in outs_its))
        if not show:
            return res
        show_results(*res, ctxs=ctxs, max_n=max_n, **kwargs)
        return None
