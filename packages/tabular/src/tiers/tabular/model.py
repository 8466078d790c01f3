"""`TabularModel`: embeddings for the categorical columns, batch norm for the continuous ones, then an MLP of
`LinBnDrop` blocks; and the embedding-size rule."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from tiers.train.nn.layers import Embedding, LinBnDrop, SigmoidRange

if TYPE_CHECKING:
    from tiers.tabular.core import TabularPandas
    from tiers.tabular.data import TabularDataLoaders

__all__ = ["TabularModel", "emb_sz_rule", "get_emb_sz", "tabular_config"]


def emb_sz_rule(n_cat: int) -> int:
    """The embedding width for a variable with `n_cat` classes: `min(600, round(1.6 * n_cat ** 0.56))`.

    >>> emb_sz_rule(10), emb_sz_rule(100000)
    (6, 600)
    """
    return min(600, round(1.6 * n_cat**0.56))


def get_emb_sz(to: TabularPandas | TabularDataLoaders, sz_dict: dict | None = None) -> list[tuple[int, int]]:
    """`(n_classes, width)` for each categorical column of `to` (a `TabularPandas` or its loaders), the width from
    `sz_dict[col]` when given, else `emb_sz_rule`."""
    sz_dict = sz_dict or {}
    classes = to.classes
    res = []
    for c in to.cat_names:
        if c not in classes:
            raise KeyError(f"get_emb_sz: categorical column {c!r} has no classes; add Categorify to the procs.")
        n = len(classes[c])
        res.append((n, int(sz_dict.get(c, emb_sz_rule(n)))))
    return res


def tabular_config(**kwargs: Any) -> dict:
    """Keyword arguments for `TabularModel` given to `tabular_learner(config=...)`: `ps`, `embed_p`, `y_range`,
    `use_bn`, `bn_final`, `bn_cont`, `act_cls`, `lin_first`."""
    allowed = {"ps", "embed_p", "y_range", "use_bn", "bn_final", "bn_cont", "act_cls", "lin_first"}
    bad = set(kwargs) - allowed
    if bad:
        raise TypeError(f"tabular_config: unknown options {sorted(bad)}; the options are {sorted(allowed)}.")
    return kwargs


class TabularModel(nn.Module):
    """An MLP for tabular data: each categorical column goes through an embedding (`emb_szs` = `(n_classes, width)`
    pairs; dropout `embed_p`), the `n_cont` continuous columns through batch norm (`bn_cont`), then the
    concatenation through `LinBnDrop` layers of sizes `layers` (dropouts `ps`, activation `act_cls`) and a last
    linear layer to `out_sz` (batch-normed only with `bn_final`), squashed into `y_range` when given.

    >>> m = TabularModel([(5, 3), (4, 2)], n_cont=2, out_sz=2, layers=[8])
    >>> m(torch.zeros(3, 2, dtype=torch.long), torch.zeros(3, 2)).shape
    torch.Size([3, 2])
    """

    def __init__(self, emb_szs: Sequence[tuple[int, int]], n_cont: int, out_sz: int, layers: Sequence[int],
                 ps: float | Sequence[float] | None = None, embed_p: float = 0.0,
                 y_range: tuple[float, float] | None = None, use_bn: bool = True, bn_final: bool = False,
                 bn_cont: bool = True, act_cls: Callable[[], nn.Module] | nn.Module = nn.ReLU,
                 lin_first: bool = True) -> None:
        super().__init__()
        layers = list(layers)
        if ps is None:
            ps = [0.0] * len(layers)
        elif not isinstance(ps, Sequence):
            ps = [ps] * len(layers)
        if len(ps) != len(layers):
            raise ValueError(f"TabularModel: {len(ps)} dropout values in ps for {len(layers)} layers; give one per "
                             "layer or a single float.")
        self.embeds = nn.ModuleList([Embedding(ni, nf) for ni, nf in emb_szs])
        self.emb_drop = nn.Dropout(embed_p)
        self.bn_cont = nn.BatchNorm1d(n_cont) if bn_cont and n_cont > 0 else None
        self.n_emb, self.n_cont = sum(nf for _, nf in emb_szs), n_cont
        sizes = [self.n_emb + n_cont, *layers, out_sz]
        mk_act = (lambda: act_cls) if isinstance(act_cls, nn.Module) else act_cls
        blocks: list[nn.Module] = [LinBnDrop(sizes[i], sizes[i + 1], bn=use_bn and (i != len(sizes) - 2 or bn_final),
                            p=p, act=mk_act() if i < len(sizes) - 2 else None, lin_first=lin_first)
                  for i, p in enumerate([*ps, 0.0])]
        if y_range is not None:
            blocks.append(SigmoidRange(*y_range))
        self.layers = nn.Sequential(*blocks)

    def forward(self, x_cat: Tensor, x_cont: Tensor | None = None) -> Tensor:
        parts = []
        if self.n_emb:
            parts.append(self.emb_drop(torch.cat([e(x_cat[:, i]) for i, e in enumerate(self.embeds)], 1)))
        if self.n_cont:
            if x_cont is None:
                raise ValueError(f"TabularModel: the model has {self.n_cont} continuous inputs but got x_cont=None.")
            parts.append(self.bn_cont(x_cont) if self.bn_cont is not None else x_cont)
        return self.layers(torch.cat(parts, 1) if len(parts) > 1 else parts[0])
