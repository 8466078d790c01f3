"""tiers.collab: Collaborative filtering: `CollabDataLoaders`, `EmbeddingDotBias`, `EmbeddingNN`, `collab_learner`."""

__version__ = "0.1.0"

from tiers.collab.core import (
    CollabDataLoaders,
    CollabLearner,
    EmbeddingDotBias,
    EmbeddingNN,
    TabularCollab,
    collab_learner,
)
from tiers.collab.samples import make_ratings_sample

__all__ = ["CollabDataLoaders", "CollabLearner", "EmbeddingDotBias", "EmbeddingNN", "TabularCollab", "collab_learner",
           "make_ratings_sample"]
