"""Collaborative filtering (the paper's section 2.4) on ratings generated from a known low-rank model.

    python examples/collab_ratings.py
"""

import tempfile
from pathlib import Path

from tiers.collab.all import CollabDataLoaders, collab_learner
from tiers.collab.samples import make_ratings_sample

folder = Path(tempfile.mkdtemp())
noise = make_ratings_sample(folder, n_users=300, n_items=400, n_ratings=60000)  # ratings.csv like MovieLens
dls = CollabDataLoaders.from_csv(folder / "ratings.csv", bs=256)
learn = collab_learner(dls, n_factors=20, y_range=(0, 5.5))
learn.fit_one_cycle(8, 1e-2, wd=0.3)
print(f"validation RMSE {learn.validate()[0] ** 0.5:.3f}; the noise floor is {noise:.3f}")
