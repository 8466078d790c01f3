"""tiers.tabular: Tabular deep learning on pandas DataFrames: `TabularPandas`, procs, `TabularModel`, `tabular_learner`."""

__version__ = "0.1.0"
