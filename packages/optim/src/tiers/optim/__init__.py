"""tiers.optim: A generic optimizer built from stats and steppers (SGD, Adam(W), RAdam, LAMB, LARS, Lookahead...), plus `OptimWrapper` for any `torch.optim` optimizer."""

__version__ = "0.1.0"
