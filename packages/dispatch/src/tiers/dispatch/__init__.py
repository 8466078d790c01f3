"""tiers.dispatch: Type dispatch on the first two arguments, the NumPy-like list `L`, and small helpers (`patch`, `delegates`, `store_attr`, `GetAttr`). Standard library only."""

__version__ = "0.1.0"
