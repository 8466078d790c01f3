"""Persistence, with one path rule and one writer (`paths`): model weights (`persist`), resumable checkpoints
(`checkpoint`), inference export (`export`) with its safe loader (`safe_load`) and code stored by value
(`by_value`), ONNX export (`onnx`). Every file is written atomically by `tiers.dispatch.files`.
"""

from tiers.train.io import by_value, checkpoint, export, onnx, paths, persist, safe_load
from tiers.train.io.checkpoint import *  # noqa: F403
from tiers.train.io.export import *  # noqa: F403
from tiers.train.io.onnx import *  # noqa: F403
from tiers.train.io.paths import *  # noqa: F403
from tiers.train.io.persist import *  # noqa: F403

__all__ = [name for mod in (paths, persist, checkpoint, export, onnx) for name in mod.__all__]
