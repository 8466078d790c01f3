"""Where a Learner's files go, and who writes them: the one rule for `save`, `load`, `save_checkpoint`,
`fit(resume=)` and `export`.

- A relative name is relative to `learn.path / learn.model_dir` (by default `<path>/models/`), subfolders
  included (`learn.save("runs/a")` writes `<path>/models/runs/a.pth`); an absolute path is used as it is.
  `save`/`save_checkpoint`/`resume` add `.pth` to a name without a suffix.
- `export` follows the same rule: `learn.export()` writes `<path>/models/export.pkl`, next to the weights, and
  returns that path (fastai writes `<path>/export.pkl`: pass `learn.path/"export.pkl"` to get that).
- In distributed training only rank 0 writes; every rank gets the path back, and when a process group runs,
  every rank waits until the file is written (so all ranks must call the method, as they do in `distrib_ctx`).
"""

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["learner_file", "is_writer", "write_once"]


def learner_file(learn: Any, fname: str | os.PathLike[str], suffix: str | None = ".pth") -> Path:
    """The path of `fname` under the rule above: absolute as is, else `learn.path / learn.model_dir / fname`;
    `suffix` is added to a name without one."""
    fname = Path(fname)
    if suffix and fname.suffix == "":
        fname = fname.with_suffix(suffix)
    if fname.is_absolute():
        return fname
    return Path(learn.path) / Path(learn.model_dir) / fname


def is_writer() -> bool:
    """Whether this process writes files: rank 0 of a distributed run (by the process group, else `RANK`), or
    the only process."""
    from tiers.tensors import rank_distrib

    return rank_distrib() == 0


def write_once(target: Path, write: Callable[[Path], Any]) -> Path:
    """Run `write(target)` on the writing process only (see `is_writer`), then wait for it on every rank when a
    process group runs; returns `target`."""
    import torch.distributed as dist

    group = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    try:
        if is_writer():
            write(target)
    finally:
        if group:
            dist.barrier()  # the file exists for every rank once this returns (and a failed write hangs no rank)
    return target
