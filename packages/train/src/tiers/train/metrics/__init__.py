"""Metrics: the `Metric` protocol and its accumulators (`base`), and the common metrics (`common`).
"""

from tiers.train.metrics import base, common
from tiers.train.metrics.base import *  # noqa: F403
from tiers.train.metrics.common import *  # noqa: F403

__all__ = [name for mod in (base, common) for name in mod.__all__]
