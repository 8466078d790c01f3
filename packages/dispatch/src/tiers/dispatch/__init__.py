"""tiers.dispatch: type dispatch on the first two arguments (`typedispatch`, `TypeDispatch`, `retain_type`), the
NumPy-like list `L`, and small class/function helpers (`patch`, `delegates`, `funcs_kwargs`, `store_attr`,
`GetAttr`...). Standard library only; importing it changes nothing global."""

__version__ = "0.1.0"

from tiers.dispatch.attrs import GetAttr, add_props, custom_dir, delegate_attr, store_attr
from tiers.dispatch.basics import (
    NoneType,
    add,
    all_equal,
    annotations,
    camel2snake,
    chunked,
    class2attr,
    compose,
    detuplify,
    eq,
    equals,
    even_mults,
    first,
    flatten,
    ge,
    groupby,
    gt,
    ifnone,
    is_array,
    is_coll,
    is_iter,
    is_listy,
    last,
    le,
    listify,
    lt,
    merge,
    mul,
    ne,
    noop,
    noops,
    num_cpus,
    only,
    partialler,
    range_of,
    risinstance,
    setify,
    snake2camel,
    stop,
    sub,
    true,
    truediv,
    tuplify,
    uniqueify,
    using_attr,
    val2idx,
)
from tiers.dispatch.defaults import Defaults, defaults
from tiers.dispatch.foundation import L, coll_repr, cycle, is_bool, is_indexer, mask2idxs, zip_cycle
from tiers.dispatch.meta import (
    FixSigMeta,
    PrePostInitMeta,
    copy_func,
    delegates,
    funcs_kwargs,
    method,
    patch,
    patch_to,
    use_kwargs,
    use_kwargs_dict,
)
from tiers.dispatch.paths import Path
from tiers.dispatch.retain import retain_type, retain_types
from tiers.dispatch.showdoc import doc
from tiers.dispatch.typedispatch import DispatchReg, Missing, TypeDispatch, anno_types, typedispatch
from tiers.dispatch.workers import parallel
from tiers.dispatch.xtras import (
    ContextManagers,
    Inf,
    ReindexCollection,
    Stateful,
    fastuple,
    getcallable,
    instantiate,
    join_path_file,
    load_pickle,
    maps,
    nested_attr,
    round_multiple,
    save_pickle,
    working_directory,
)

__all__ = [
    # typedispatch
    "DispatchReg", "Missing", "TypeDispatch", "anno_types", "typedispatch", "retain_type", "retain_types",
    # L
    "L", "coll_repr", "cycle", "is_bool", "is_indexer", "mask2idxs", "zip_cycle",
    # classes and signatures
    "GetAttr", "add_props", "custom_dir", "delegate_attr", "store_attr", "FixSigMeta", "PrePostInitMeta", "copy_func",
    "delegates", "funcs_kwargs", "method", "patch", "patch_to", "use_kwargs", "use_kwargs_dict",
    # library-wide settings; a pathlib.Path with ls() (a subclass: nothing patched)
    "Defaults", "defaults", "Path",
    # extras
    "ContextManagers", "Inf", "ReindexCollection", "Stateful", "fastuple", "getcallable", "instantiate",
    "join_path_file", "load_pickle", "maps", "nested_attr", "round_multiple", "save_pickle", "working_directory",
    # fastcore's `parallel` (worker processes or threads, results in order) and fastai's `doc`
    "parallel", "doc",
    # functional helpers
    "NoneType", "all_equal", "annotations", "camel2snake", "chunked", "class2attr", "compose", "detuplify",
    "equals", "even_mults", "first", "flatten", "groupby", "ifnone", "is_array", "is_coll", "is_iter",
    "is_listy", "last", "listify", "merge", "noop", "noops", "num_cpus", "only", "partialler", "range_of",
    "risinstance", "setify", "snake2camel", "stop", "true", "lt", "gt", "le", "ge", "eq", "ne", "add", "sub", "mul",
    "truediv", "tuplify", "uniqueify", "using_attr", "val2idx",
]
