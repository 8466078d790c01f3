"""tiers.dispatch: Type dispatch on the first two arguments, the NumPy-like list `L`, and small helpers (`patch`, `delegates`, `store_attr`, `GetAttr`). Standard library only."""

__version__ = "0.1.0"

from tiers.dispatch.retain import retain_type, retain_types
from tiers.dispatch.typedispatch import DispatchReg, TypeDispatch, anno_types, typedispatch

__all__ = ["DispatchReg", "TypeDispatch", "anno_types", "retain_type", "retain_types", "typedispatch"]
