"""tiers.data: The data layer: an overridable `DataLoader`, `TfmdLists`, `Datasets`, `DataLoaders`, the `DataBlock` API, splitters, labellers and `untar_data`.

>>> from tiers.data import DataBlock, CategoryBlock, TransformBlock
>>> dblock = DataBlock(blocks=(TransformBlock, CategoryBlock), get_y=lambda o: "odd" if o % 2 else "even")
>>> dls = dblock.dataloaders(list(range(100)), bs=8, device="cpu")
"""

__version__ = "0.1.0"

from tiers.data.block import CategoryBlock, DataBlock, MultiCategoryBlock, RegressionBlock, TransformBlock
from tiers.data.categorical import (
    Categorize,
    CategoryMap,
    EncodedMultiCategorize,
    MultiCategorize,
    NoVocabError,
    OneHotEncode,
    RegressionSetup,
    UnknownLabelError,
    get_c,
    one_hot,
    one_hot_decode,
)
from tiers.data.collate import collate_error, fa_collate, fa_convert
from tiers.data.core import Datasets, FilteredBase, TfmdLists, check_splits, decode_at, show_at, test_set
from tiers.data.dataloaders import DataLoaders
from tiers.data.download import DownloadError, UnsafeArchiveError
from tiers.data.external import (
    URLs,
    download_data,
    load_checks,
    resolve_url,
    tiers_cfg,
    tiers_home,
    tiers_path,
    untar_data,
)
from tiers.data.files import (
    FileGetter,
    ImageGetter,
    RegexLabeller,
    get_files,
    get_image_files,
    get_text_files,
    image_extensions,
    parent_label,
)
from tiers.data.getters import AttrGetter, ColReader, ItemGetter, MissingColumnError
from tiers.data.load import DataLoader, SkipItemException
from tiers.data.missing import MissingValueError, NonFiniteValueError, is_missing
from tiers.data.samples import batch_to_samples
from tiers.data.sampling import PartialDL, WeightedDL
from tiers.data.show import get_grid, show_batch, show_results, wrapped_table
from tiers.data.splitters import (
    ColSplitter,
    EndSplitter,
    FileSplitter,
    FuncSplitter,
    GrandparentSplitter,
    IndexSplitter,
    MaskSplitter,
    RandomSplitter,
    RandomSubsetSplitter,
    TrainTestSplitter,
)
from tiers.data.summary import SummaryError
from tiers.data.tables import get_empty_df, read_csv
from tiers.data.tfmdl import TfmdDL
from tiers.data.transforms import IntToFloatTensor, Normalize, ToTensor, broadcast_vec
from tiers.dispatch import noop

__all__ = [
    "AttrGetter", "Categorize", "CategoryBlock", "CategoryMap", "ColReader", "ColSplitter", "DataBlock", "DataLoader",
    "DataLoaders", "Datasets", "DownloadError", "EncodedMultiCategorize", "EndSplitter", "FileGetter", "FileSplitter", "FilteredBase",
    "FuncSplitter", "GrandparentSplitter", "ImageGetter", "IndexSplitter", "IntToFloatTensor", "ItemGetter",
    "MaskSplitter", "MissingColumnError", "MissingValueError", "MultiCategorize", "NoVocabError", "NonFiniteValueError", "MultiCategoryBlock", "Normalize", "OneHotEncode", "PartialDL", "RandomSplitter",
    "RandomSubsetSplitter", "RegexLabeller", "RegressionBlock", "RegressionSetup", "SkipItemException",
    "SummaryError", "TfmdDL", "TfmdLists", "ToTensor", "TrainTestSplitter", "TransformBlock", "URLs", "UnknownLabelError", "UnsafeArchiveError", "WeightedDL", "batch_to_samples",
    "broadcast_vec", "check_splits", "collate_error", "decode_at", "download_data", "fa_collate", "fa_convert", "get_c", "get_empty_df", "get_files", "get_grid",
    "get_image_files", "get_text_files", "image_extensions", "is_missing", "load_checks", "noop", "one_hot", "one_hot_decode", "parent_label",
    "read_csv", "resolve_url", "show_at", "show_batch", "show_results", "test_set", "wrapped_table", "tiers_cfg", "tiers_home",
    "tiers_path", "untar_data",
]
