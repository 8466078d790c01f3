"""Distributed data parallel training on `torch.distributed`: `learn.distrib_ctx()`, `to_distributed`, `DistributedDL`.

Start one process per device with `torchrun --nproc_per_node N train.py` (several machines: add
`--nnodes M --node_rank i --rdzv_endpoint host:port`; the script does not change). In the script:

>>> with learn.distrib_ctx():          # doctest: +SKIP
...     learn.fit_one_cycle(3, 1e-3)

Inside the block the model is wrapped in `DistributedDataParallel`, each tiers loader gives each rank its
own slice of the items (reshuffled every epoch with a seed shared by the ranks), validation predictions
and targets are gathered from all ranks so every rank computes the SAME metrics over the whole
validation set, and only rank 0 shows progress, logs and saves. The backend is NCCL on GPUs, gloo on CPU.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from tiers.tensors import num_distrib, rank_distrib
from tiers.train.callbacks.core import Callback
from tiers.train.nn.model_utils import unwrap_model

# `rank_distrib`/`num_distrib` are tiers.tensors' (one definition: num_distrib is 0 outside distributed training,
# as in fastai); re-exported here because distributed code reaches for them with the rest of this module.
__all__ = ["rank_distrib", "num_distrib", "DistributedDL", "DistributedTrainer", "setup_distrib", "teardown_distrib"]


class _DistribMixin:
    # Mixed in front of the loader's own class, so every other step (items, collation, transforms) is unchanged.
    rank: int
    world_size: int
    distrib_seed: int
    distrib_epoch: int
    _orig_dl: Any  # the loader this one was made from
    dataset: Any  # the rest is the host loader's
    shuffle: bool

    @property
    def total_n(self) -> int:
        """Items in the whole dataset (all ranks together)."""
        n = self._n if self._n is not None else len(self.dataset)
        return n

    @property
    def n(self) -> int:
        # Each rank sees ceil(total / world) items: the last ones are repeated to even out the ranks.
        return -(-self.total_n // self.world_size)

    @n.setter
    def n(self, v: int | None) -> None:
        self._n = v

    def randomize(self) -> None:
        super().randomize()  # type: ignore[misc]  # the loader class this is mixed in front of (built by type()) has it
        self.distrib_epoch += 1

    def get_idxs(self) -> list[int]:
        total = self.total_n
        if self.shuffle:
            # Every rank draws the same permutation (same seed and epoch), then keeps its own stride of it.
            g = torch.Generator().manual_seed(self.distrib_seed + self.distrib_epoch)
            idxs = torch.randperm(total, generator=g).tolist()
        else:
            idxs = list(range(total))
        per = self.n
        idxs = (idxs * -(-per * self.world_size // max(total, 1)))[: per * self.world_size]  # pad by cycling
        return idxs[self.rank :: self.world_size]


_DISTRIB_CLASSES: dict[type, type] = {}


def _distrib_class(cls: type) -> type:
    if issubclass(cls, _DistribMixin):
        return cls
    if cls not in _DISTRIB_CLASSES:
        _DISTRIB_CLASSES[cls] = type(f"Distributed{cls.__name__}", (_DistribMixin, cls), {"__module__": __name__})
    return _DISTRIB_CLASSES[cls]


def DistributedDL(dl: Any, rank: int | None = None, world_size: int | None = None, seed: int = 0) -> Any:
    """A copy of the tiers loader `dl` that yields only rank `rank`'s share of the items (of `world_size` shares).

    Shares have equal size (the last items are repeated to fill them); with `shuffle`, every epoch uses a new
    permutation drawn from `seed` + epoch, identical on every rank, so the shares never overlap.

    >>> DistributedDL(dls.train, rank=0, world_size=2)      # doctest: +SKIP
    """
    if not hasattr(dl, "new") or not hasattr(dl, "get_idxs"):
        raise TypeError(f"DistributedDL needs a tiers DataLoader (with new/get_idxs), got {type(dl).__name__}; "
                        "wrap a torch DataLoader's dataset in tiers.data.DataLoader, or use a DistributedSampler")
    rank = rank_distrib() if rank is None else rank
    world_size = max(num_distrib(), 1) if world_size is None else world_size  # 0: not distributed, one process
    if not 0 <= rank < world_size:
        raise ValueError(f"DistributedDL: rank {rank} is not in [0, world_size={world_size})")
    if isinstance(dl, _DistribMixin):
        dl = dl._orig_dl
    res = dl.new(cls=_distrib_class(type(dl)))
    for a in ("_n_inp", "_types"):
        if a in dl.__dict__:
            res.__dict__[a] = dl.__dict__[a]
    res.rank, res.world_size, res.distrib_seed, res.distrib_epoch, res._orig_dl = rank, world_size, seed, 0, dl
    return res


def _gather(t: Tensor, world: int) -> Tensor:
    # [world, b, ...] -> [b, world, ...] -> [b * world, ...]: item j of rank r lands at position j * world + r,
    # its position in the unsharded order.
    parts = [torch.empty_like(t) for _ in range(world)]
    dist.all_gather(parts, t.contiguous())
    return torch.stack(parts, 1).flatten(0, 1)


class DistributedTrainer(Callback):
    """Callback of `to_distributed`: DDP-wraps the model, shards the loaders, gathers validation results.

    During validation each batch's predictions and targets are gathered from all ranks (padding removed),
    and the loss recomputed on them, so every rank's `Recorder` sees the whole validation set.
    """

    order = 11  # after CastToTensor (9): batches are plain tensors; before Recorder (50) reads them

    def __init__(self, sync_bn: bool = True, seed: int = 0, **ddp_kwargs: Any) -> None:
        super().__init__()
        self.sync_bn, self.seed, self.ddp_kwargs = sync_bn, seed, ddp_kwargs
        self._saved: dict = {}

    def before_fit(self) -> None:
        learn = self.learn
        self.world = max(num_distrib(), 1)
        if self.world <= 1:
            return
        model = learn.model
        if not isinstance(model, nn.parallel.DistributedDataParallel):
            dev = learn._model_device()
            if self.sync_bn and dev.type == "cuda":
                model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            ids = [dev.index] if dev.type == "cuda" and dev.index is not None else None
            learn.model = nn.parallel.DistributedDataParallel(model, device_ids=ids, **self.ddp_kwargs)
        self._saved["loaders"] = list(learn.dls.loaders)
        learn.dls.loaders = [DistributedDL(dl, seed=self.seed) if hasattr(dl, "get_idxs") else dl
                             for dl in learn.dls.loaders]

    def after_fit(self) -> None:
        if "loaders" in self._saved:
            self.learn.dls.loaders = self._saved.pop("loaders")
        self.learn.model = unwrap_model(self.learn.model)

    def before_validate(self) -> None:
        self._seen = 0

    def after_loss(self) -> None:
        learn = self.learn
        dl = learn.dl
        if learn.training or self.world <= 1 or not isinstance(dl, _DistribMixin):
            return
        if not isinstance(learn.pred, Tensor) or not all(isinstance(y, Tensor) for y in learn.yb):
            raise TypeError("DistributedTrainer gathers tensor predictions and targets only; got "
                            f"{type(learn.pred).__name__} predictions")
        b = learn.pred.shape[0]
        keep = (self._seen * self.world + torch.arange(b * self.world)) < dl.total_n
        self._seen += b
        pred = _gather(learn.pred, self.world)[keep.to(learn.pred.device)]
        yb = tuple(_gather(y, self.world)[keep.to(y.device)] for y in learn.yb)
        learn.pred, learn.yb = pred, yb
        learn.loss = learn.loss_func(pred, *yb).detach()


def to_distributed(self: Any, sync_bn: bool = True, seed: int = 0, **ddp_kwargs: Any) -> Any:
    """Make `fit` run as one of several processes in the current process group (see `DistributedTrainer`);
    ranks other than 0 stop showing progress and logging. Undo with `detach_distributed`."""
    self.add_cb(DistributedTrainer(sync_bn=sync_bn, seed=seed, **ddp_kwargs))
    if rank_distrib() != 0:
        self._distrib_quiet = (self.logger, [c for c in self.cbs if type(c).__name__ == "ProgressCallback"])
        self.logger = _quiet
        self.remove_cbs(self._distrib_quiet[1])
    return self


def _quiet(*args: Any, **kwargs: Any) -> None:
    return None


def detach_distributed(self: Any) -> Any:
    """Remove what `to_distributed` added (restoring rank > 0's progress and logging)."""
    self.remove_cbs([c for c in self.cbs if isinstance(c, DistributedTrainer)])
    quiet = self.__dict__.pop("_distrib_quiet", None)
    if quiet is not None:
        self.logger = quiet[0]
        self.add_cbs(quiet[1])
    self.model = unwrap_model(self.model)
    return self


def setup_distrib(backend: str | None = None) -> bool:
    """Join the process group described by torchrun's environment (`RANK`, `WORLD_SIZE`, `MASTER_ADDR`...), once;
    on GPUs also pick this process's device (`LOCAL_RANK`). Returns True when this call created the group."""
    if not dist.is_available() or dist.is_initialized() or int(os.environ.get("WORLD_SIZE", 1)) <= 1:
        return False
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend)
    return True


def teardown_distrib() -> None:
    """Leave the process group (after a barrier, so no rank leaves while others still talk)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


@contextmanager
def distrib_ctx(self: Any, sync_bn: bool = True, seed: int = 0, backend: str | None = None,
                **ddp_kwargs: Any) -> Iterator[Any]:
    """Context manager: join the torchrun process group if needed, train distributed inside the block, then undo it.

    Only rank 0 writes with `learn.save` / `save_checkpoint` / `export` (decided in `tiers.train.io.paths`; the
    others wait for it).
    """
    created = setup_distrib(backend)
    self.to_distributed(sync_bn=sync_bn, seed=seed, **ddp_kwargs)
    try:
        yield self
    finally:
        self.detach_distributed()
        if created:
            teardown_distrib()
