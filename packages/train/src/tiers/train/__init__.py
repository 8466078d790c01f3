"""tiers.train: The `Learner` with two-way callbacks, schedules, `lr_find`, metrics, losses, layers, mixed precision, checkpoints and export."""

__version__ = "0.1.0"
