"""Persistence: model weights (`persist`), resumable checkpoints (`checkpoint`), inference export (`export`).
"""

from tiers.train.io import checkpoint, export, persist
from tiers.train.io.checkpoint import *  # noqa: F403
from tiers.train.io.export import *  # noqa: F403
from tiers.train.io.persist import *  # noqa: F403

__all__ = [name for mod in (persist, checkpoint, export) for name in mod.__all__]
