"""tiers.pipeline: Reversible `Transform`s dispatched on type, and `Pipeline`s that compose, set up, decode and show them."""

__version__ = "0.1.0"
