"""tiers.pipeline: Reversible `Transform`s dispatched on type, and `Pipeline`s that compose, set up, decode and show them.

Usable on its own with plain tensors and Python objects: no DataLoader or Learner needed.

>>> from tiers.pipeline import Transform, Pipeline
>>> class Scale(Transform):
...     def __init__(self, k): self.k = k
...     def encodes(self, x: float): return x * self.k
...     def decodes(self, x: float): return x / self.k
>>> pipe = Pipeline([Scale(2.0)])
>>> pipe((1.5, "label")), pipe.decode((3.0, "label"))
((3.0, 'label'), (1.5, 'label'))
"""

__version__ = "0.1.0"

from tiers.pipeline.pipeline import Pipeline, gather_attr_names, gather_attrs, mk_transform
from tiers.pipeline.show import (
    Category,
    MultiCategory,
    ShowTitle,
    TitledFloat,
    TitledInt,
    TitledStr,
    TitledTuple,
    show_title,
)
from tiers.pipeline.transform import (
    DisplayedTransform,
    InplaceTransform,
    ItemTransform,
    Transform,
    compose_tfms,
)

__all__ = [
    "Transform", "InplaceTransform", "DisplayedTransform", "ItemTransform", "compose_tfms",
    "Pipeline", "mk_transform", "gather_attrs", "gather_attr_names",
    "show_title", "ShowTitle", "TitledInt", "TitledFloat", "TitledStr", "TitledTuple", "Category", "MultiCategory",
]
