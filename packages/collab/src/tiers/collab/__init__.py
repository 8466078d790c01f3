"""tiers.collab: Collaborative filtering: `CollabDataLoaders`, `EmbeddingDotBias`, `EmbeddingNN`, `collab_learner`."""

__version__ = "0.1.0"
