"""tiers.tabular: Tabular deep learning on pandas DataFrames: `TabularPandas`, procs, `TabularModel`, `tabular_learner`.

>>> import pandas as pd
>>> from tiers.tabular import TabularPandas, Categorify, FillMissing, Normalize
>>> df = pd.DataFrame({"a": ["x", "y", "x", "z"], "b": [1.0, None, 3.0, 4.0], "t": [0, 1, 0, 1]})
>>> to = TabularPandas(df, [Categorify, FillMissing, Normalize], ["a"], ["b"], "t", splits=([0, 1, 2], [3]))
>>> to.cat_names
['a', 'b_na']
"""

__version__ = "0.1.0"

from tiers.tabular.core import Tabular, TabularPandas, TabularProc, check_columns, load_pandas
from tiers.tabular.data import TabDataLoader, TabPartialDL, TabularDataLoaders, TabWeightedDL
from tiers.tabular.learner import TabularLearner, TabularRow, check_y_range, tabular_learner
from tiers.tabular.model import TabularModel, emb_sz_rule, get_emb_sz, tabular_config
from tiers.tabular.procs import Categorify, FillMissing, FillStrategy, Normalize, warn_unseen
from tiers.tabular.samples import make_adult_sample
from tiers.tabular.utils import (
    add_datepart,
    add_elapsed_times,
    cont_cat_split,
    df_shrink,
    df_shrink_dtypes,
    make_date,
)

__all__ = [
    "Categorify", "FillMissing", "FillStrategy", "Normalize", "TabDataLoader", "TabPartialDL", "TabWeightedDL",
    "Tabular", "TabularDataLoaders",
    "TabularLearner", "TabularModel", "TabularRow", "TabularPandas", "TabularProc", "add_datepart", "add_elapsed_times",
    "check_columns", "check_y_range", "cont_cat_split", "df_shrink", "df_shrink_dtypes", "emb_sz_rule", "get_emb_sz",
    "load_pandas", "make_adult_sample", "make_date", "tabular_config", "tabular_learner", "warn_unseen",
]
