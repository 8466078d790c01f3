"""`DataBlock.summary`: one item followed through every stage, with the failing stage and transform named."""

from typing import TYPE_CHECKING, Any

from torch import Tensor

from tiers.dispatch import L
from tiers.pipeline import Transform

if TYPE_CHECKING:
    from tiers.data.block import DataBlock

__all__ = ["SummaryError"]


class SummaryError(RuntimeError):
    "Raised by `DataBlock.summary` when a step fails and the original exception cannot carry the new message."


def _desc(o, depth: int = 0) -> str:
    if isinstance(o, Tensor):
        return f"{type(o).__name__} of shape {list(o.shape)}, {str(o.dtype).replace('torch.', '')}"
    if isinstance(o, tuple) and depth < 2:
        return "(" + ", ".join(_desc(x, depth + 1) for x in o) + ")"
    r = repr(o)
    return f"{r if len(r) <= 70 else r[:67] + '...'} ({type(o).__name__})"


def _name(f) -> str:
    if isinstance(f, Transform):
        return f._name or type(f).__name__
    n = getattr(f, "__name__", None)
    return n if isinstance(n, str) else repr(f)


def _fail(e: Exception, stage: str, where: str):
    msg = f"DataBlock.summary: failed while {stage}, in {where}: {type(e).__name__}: {e}"
    print(f"\nFAILED while {stage}, in {where}:\n  {type(e).__name__}: {e}")
    try:
        new = type(e)(msg)
    except Exception:
        new = SummaryError(msg)
    raise new from e


def _step(stage: str, where: str, fn):
    try:
        return fn()
    except Exception as e:
        _fail(e, stage, where)


def _getter_names(dblock) -> list[str]:
    n, nb = dblock.n_inp, len(dblock.getters)
    names = []
    for k in range(nb):
        if k < n and dblock.get_x is not None:
            names.append("get_x" if n == 1 else f"get_x[{k}]")
        elif k >= n and dblock.get_y is not None:
            names.append("get_y" if nb - n == 1 else f"get_y[{k - n}]")
        else:
            names.append(f"getters[{k}]")
    return names


def summarize(dblock: "DataBlock", source: Any, bs: int = 4, show_batch: bool = False, **kwargs: Any) -> None:
    "Print the step-by-step report of `DataBlock.summary` (see there)."
    from tiers.data.block import _fname

    print(f"Collecting items from {source!r:.100}")
    items = _step("collecting the items", f"get_items={_fname(dblock.get_items or (lambda o: o))}",
                  lambda: dblock._items(source))
    print(f"Found {len(items)} items")
    splits = _step("splitting the items", f"splitter={_fname(dblock.splitter or 'RandomSplitter')}",
                   lambda: dblock._splits(items))
    print(f"{len(splits)} datasets of sizes {','.join(str(len(s)) for s in splits)}")

    i0 = splits[0][0]
    item = L(items, use_list=None)[i0] if not hasattr(items, "iloc") else items.iloc[i0]
    print(f"\nBuilding one sample: training item {i0}: {_desc(item)}")
    tfm_lists = dblock._combine_type_tfms()
    gnames = _getter_names(dblock)
    for k, tfms in enumerate(tfm_lists):
        g = tfms[0]
        _step(f"reading element {k} of item {i0}", f"{gnames[k]} ({_name(g)})", lambda g=g: g(item))

    print("\nSetting up the type transforms")
    from tiers.data.core import Datasets

    dsets = _step("setting up the type transforms on the training items",
                  "; ".join(" -> ".join(_name(t) for t in tl) for tl in tfm_lists),
                  lambda: Datasets(items, tfms=tfm_lists, splits=splits, dl_type=dblock.dl_type, n_inp=dblock.n_inp))
    train = dsets.train
    for k, tl in enumerate(train.tls):
        role = "input" if k < dblock.n_inp else "target"
        print(f"  Pipeline {k} ({role}): {tl.tfms}")
        x = tl.items[0]
        print(f"    starting from    {_desc(x)}")
        for t in tl.tfms.fs:
            x = _step(f"applying pipeline {k} ({role}) to training item {i0}", _name(t),
                      lambda t=t, x=x: t(x, split_idx=0))
            print(f"    applying {_name(t):<12} gives {_desc(x)}")
    sample = train[0]
    print(f"\nFinal sample: {_desc(sample)}")

    print("\nBuilding the DataLoaders (setting up item_tfms and batch_tfms)")
    from tiers.data.block import _merge_tfms

    # the summary of `dblock.dataloaders(source, item_tfms=..., batch_tfms=...)`: the same extra transforms
    item_tfms = _merge_tfms(dblock.item_tfms, kwargs.pop("item_tfms", None))
    batch_tfms = _merge_tfms(dblock.batch_tfms, kwargs.pop("batch_tfms", None))
    kw = {**dblock.dls_kwargs, **kwargs, "bs": bs}
    dls = _step("building the DataLoaders", f"item_tfms={list(item_tfms)}, batch_tfms={list(batch_tfms)}",
                lambda: dsets.dataloaders(after_item=item_tfms, after_batch=batch_tfms, **kw))
    dl = dls.train
    samples = [train[i] for i in range(min(bs, len(train)))]
    print("\nApplying item_tfms to the first sample")
    x = samples[0]
    for t in dl.after_item.fs:
        if _name(t) == "noop":
            continue
        x = _step("applying item_tfms to training item 0", _name(t), lambda t=t, x=x: t(x, split_idx=0))
        print(f"  applying {_name(t):<12} gives {_desc(x)}")
    tfmd = [_step(f"applying item_tfms to training item {i}", str(dl.after_item), lambda s=s: dl.after_item(s))
            for i, s in enumerate(samples)]

    print(f"\nCollating {len(tfmd)} items into a batch")
    b = _step("collating the items into a batch", "create_batch", lambda: dl.do_batch(tfmd))
    print(f"  batch: {_desc(b)}")
    if dl.device is not None:
        from tiers.tensors import to_device

        b = to_device(b, dl.device)
    print("\nApplying batch_tfms to the batch")
    for t in dl.after_batch.fs:
        if _name(t) == "noop":
            continue
        b = _step("applying batch_tfms to the batch", _name(t), lambda t=t, b=b: t(b, split_idx=0))
        print(f"  applying {_name(t):<12} gives {_desc(b)}")
    print("\nNo step failed.")
    if show_batch:
        dls.show_batch()
