"""A generator of a MovieLens-sample-like `ratings.csv` from a known low-rank model plus known noise, so the best
achievable error (the noise floor) is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["make_ratings_sample"]


def make_ratings_sample(path: str | Path, n_users: int = 100, n_items: int = 200, n_ratings: int | None = None,
                        n_factors: int = 3, noise: float = 0.3, seed: int = 0) -> float:
    """Write `path/ratings.csv` (columns userId, movieId, rating, timestamp like the MovieLens sample) with
    `n_ratings` distinct (user, item) pairs (default: a quarter of all pairs) rated
    `3 + user_bias + item_bias + user_factors . item_factors + N(0, noise)` (factors of rank `n_factors`), clipped
    to 0.5..5. Returns the standard deviation of the added noise as measured after clipping: the RMSE floor.

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> floor = make_ratings_sample(d, n_users=20, n_items=30, noise=0.3)
    >>> 0.2 < floor < 0.35, list(pd.read_csv(f"{d}/ratings.csv").columns)
    (True, ['userId', 'movieId', 'rating', 'timestamp'])
    """
    if n_users < 2 or n_items < 2:
        raise ValueError(f"make_ratings_sample: need at least 2 users and 2 items, got {n_users} and {n_items}.")
    total = n_users * n_items
    n_ratings = total // 4 if n_ratings is None else n_ratings
    if not 0 < n_ratings <= total:
        raise ValueError(f"make_ratings_sample: n_ratings={n_ratings} must be in 1..{total} (users x items).")
    rng = np.random.default_rng(seed)
    pairs = rng.choice(total, n_ratings, replace=False)
    u, i = pairs // n_items, pairs % n_items
    uf = rng.normal(0, 0.8 / np.sqrt(n_factors) ** 0.5, (n_users, n_factors))
    itf = rng.normal(0, 0.8 / np.sqrt(n_factors) ** 0.5, (n_items, n_factors))
    ub, ib = rng.normal(0, 0.3, n_users), rng.normal(0, 0.3, n_items)
    clean = 3.0 + ub[u] + ib[i] + (uf[u] * itf[i]).sum(1)
    rating = np.clip(clean + rng.normal(0, noise, n_ratings), 0.5, 5.0)
    # Clipping changes the effective noise: report what is left, the error of a perfect model of `clean`.
    floor = float(np.sqrt(np.mean((rating - np.clip(clean, 0.5, 5.0)) ** 2)))
    user_ids = rng.permutation(np.arange(1, 10 * n_users))[:n_users]
    item_ids = rng.permutation(np.arange(1, 10 * n_items))[:n_items]
    df = pd.DataFrame({"userId": user_ids[u], "movieId": item_ids[i], "rating": rating.round(3),
                       "timestamp": rng.integers(1_000_000_000, 1_500_000_000, n_ratings)})
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    df.to_csv(path / "ratings.csv", index=False)
    return floor
