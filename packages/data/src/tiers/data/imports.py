"""The everyday names fastai's star imports carry and listings use without importing them: `torch`, `nn`, `F`,
`Tensor`, `np`, `pd`, `plt`, `Path` (with `ls()`), `partial`, `attrgetter`, `itemgetter`, and the standard modules
`numbers`, `math`, `os`, `re`, `random`, `json`, `itertools`, `functools`, `collections`, `warnings`, `pickle`,
`shutil`, `operator`, `time`, `datetime`, `inspect`, `typing`, `sys`, `glob`, `copy`, `io`, `csv`, `tempfile`,
`types`, `hashlib`, `gzip`, `zipfile`, `tarfile`, `mimetypes`, `bz2`, `string`, `multiprocessing`, `threading`,
`urllib` (with `urllib.request`), `concurrent` (with `concurrent.futures`), torch's `as_tensor`, with `Counter`, `defaultdict`, `OrderedDict`,
`namedtuple`, `contextmanager`, `Iterable`, `Callable`, `Optional`, `Union` and `Any` (fastai.imports carries all of
these, and notebooks use them unimported). `tiers.data.all` (and so every `all` above it) exports them.

`pd` and `plt` are imported on first use, not here: pandas and matplotlib.pyplot cost a large part of a second,
and `import tiers.vision.all` should stay cheap for code that never touches them.
"""

import bz2
import collections
import concurrent.futures
import copy
import csv
import datetime
import functools
import glob
import gzip
import hashlib
import inspect
import io
import itertools
import json
import math
import mimetypes
import multiprocessing
import numbers
import operator
import os
import pickle
import random
import re
import shutil
import string
import sys
import tarfile
import tempfile
import threading
import time
import types
import typing
import urllib.request
import warnings
import zipfile
from collections import Counter, OrderedDict, defaultdict, namedtuple
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from functools import partial
from operator import attrgetter, itemgetter
from types import ModuleType
from typing import Any, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the name every PyTorch listing uses)
from numpy import array, ndarray  # fastai.imports carries them (fastbook: `array(im3)[4:10,4:10]`)
from torch import Tensor, as_tensor, nn

from tiers.dispatch import Path
from tiers.dispatch.extras import require

__all__ = ["F", "Path", "Tensor", "attrgetter", "itemgetter", "nn", "np", "partial", "pd", "plt", "torch",
           "array", "ndarray", "collections", "functools", "itertools", "json", "math", "numbers", "os", "random", "re",
           "warnings", "pickle", "shutil", "operator", "time", "datetime", "inspect", "typing", "Counter", "defaultdict",
           "OrderedDict", "namedtuple", "contextmanager", "Iterable", "Callable", "Optional", "Union", "Any",
           "as_tensor", "sys", "glob", "copy", "io", "csv", "tempfile", "types", "hashlib", "gzip", "zipfile", "tarfile",
           "mimetypes", "bz2", "string", "multiprocessing", "threading", "urllib", "concurrent"]


class _LazyModule(ModuleType):
    """A stand-in for the module `name` that imports it on first attribute access, then forwards to it (the real
    module is also what `sys.modules[name]` holds, so both spellings stay one module)."""

    def __init__(self, name: str):
        super().__init__(name)
        self.__dict__["_lazy_name"] = name

    def _load(self) -> ModuleType:
        # pandas and matplotlib are tiers-data's `plots` extra: a missing one names it
        name = self.__dict__["_lazy_name"]
        return require(name, dist="tiers-data", extra="plots", what="the `pd`/`plt` names of tiers.data.all")

    def __getattr__(self, attr: str):
        if attr.startswith("__") and attr.endswith("__") and attr not in ("__version__", "__path__", "__file__"):
            raise AttributeError(attr)
        return getattr(self._load(), attr)

    def __dir__(self):
        return dir(self._load())

    def __repr__(self) -> str:
        name = self.__dict__["_lazy_name"]
        state = "loaded" if name in sys.modules else "not loaded yet"
        return f"<module {name!r} (imported on first use; {state})>"


pd = _LazyModule("pandas")
plt = _LazyModule("matplotlib.pyplot")
