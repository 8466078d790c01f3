"""tiers.data: The data layer: an overridable `DataLoader`, `TfmdLists`, `Datasets`, `DataLoaders`, the `DataBlock` API, splitters, labellers and `untar_data`.

>>> from tiers.data import DataLoader, DataLoaders
>>> dls = DataLoaders(DataLoader(list(range(8)), bs=4, shuffle=True), DataLoader(list(range(4)), bs=4))
"""

__version__ = "0.1.0"

from tiers.data.collate import collate_error, fa_collate, fa_convert
from tiers.data.dataloaders import DataLoaders
from tiers.data.load import DataLoader, SkipItemException

__all__ = ["DataLoader", "DataLoaders", "SkipItemException", "collate_error", "fa_collate", "fa_convert"]
