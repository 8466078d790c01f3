"""Generators of small offline corpora shaped like fastai's IMDB samples, with a learnable sentiment signal.

Reviews are built from templates: plot sentences (names, places, jobs) carry no signal, opinion sentences draw
their adjectives and verbs mostly from the review's sentiment, and IMDB's artefacts (`<br />`, ALL CAPS, `!!!!`,
`7/10`) appear as they do in the real data, so the default text rules have work to do.

>>> df = make_imdb_df(n=4, seed=0)
>>> list(df.columns), sorted(set(df["label"]))
(['label', 'text', 'is_valid'], ['negative', 'positive'])
"""

import os
import random

import pandas as pd

from tiers.dispatch import Path  # a pathlib.Path with ls(), as untar_data returns

__all__ = ["make_texts", "make_imdb_df", "make_imdb_sample", "make_imdb_folder"]

_NAMES = ["Anna", "Boris", "Chloe", "Daniel", "Elena", "Frank", "Grace", "Hugo", "Iris", "Jack", "Karen", "Leo",
          "Maria", "Nico", "Olga", "Paul", "Quinn", "Rosa", "Sam", "Tara", "Victor", "Wendy"]
_PLACES = ["Paris", "Tokyo", "a small village", "New York", "the desert", "a space station", "London", "the jungle",
           "an old castle", "Berlin", "a submarine", "the suburbs"]
_JOBS = ["detective", "teacher", "soldier", "chef", "pilot", "doctor", "thief", "journalist", "farmer", "singer",
         "scientist", "lawyer"]
_GENRES = ["thriller", "comedy", "drama", "western", "horror film", "musical", "romance", "documentary"]
_PARTS = ["acting", "script", "plot", "soundtrack", "cinematography", "dialogue", "ending", "direction", "pacing",
          "cast", "editing", "story"]
_NEUTRAL = [
    "The story follows {name}, a {job} who lives in {place}.",
    "{name} meets {name2} on a rainy night in {place}.",
    "It is a {genre} set in {place} during the winter.",
    "The film runs for about two hours and was shot in {place}.",
    "{name} plays a {job} and {name2} plays a {job2}.",
    "Halfway through, the action moves to {place}.",
    "I watched it with my family last weekend.",
    "The director also made a {genre} a few years ago.",
]
_SENTIMENT = {
    "positive": {
        "adj": ["great", "wonderful", "brilliant", "superb", "excellent", "amazing", "moving", "delightful",
                "beautiful", "perfect", "charming", "gripping", "fantastic", "memorable"],
        "verb": ["loved", "enjoyed", "adored", "admired", "treasured"],
        "end": ["Highly recommended", "A must see", "I will watch it again", "One of the best this year"],
        "score": ["8/10", "9/10", "10/10"],
    },
    "negative": {
        "adj": ["awful", "terrible", "boring", "dull", "horrible", "bad", "poor", "painful", "weak", "lame",
                "clumsy", "tedious", "forgettable", "messy"],
        "verb": ["hated", "disliked", "regretted", "endured", "despised"],
        "end": ["Avoid it", "A waste of time", "I want my money back", "One of the worst this year"],
        "score": ["1/10", "2/10", "3/10"],
    },
}
_OPINION = [
    "The {part} was {adj}.",
    "I {verb} this movie, the {part} is {adj} and the {part2} is {adj2}.",
    "What a {adj} {genre}!",
    "Honestly the {part} felt {adj} from start to finish.",
    "{name} gives a {adj} performance as the {job}.",
    "{end}.",
    "{score}",
    "The {part} is {adv} {adj}.",
]
_ADV = ["really", "truly", "very", "quite", "so", "rather"]


def _review(rng: random.Random, label: str, noise: float) -> str:
    other = "negative" if label == "positive" else "positive"

    def words(key: str) -> str:
        # A fraction `noise` of opinion words comes from the other sentiment: the signal is strong, not trivial.
        pool = _SENTIMENT[other if rng.random() < noise else label][key]
        return rng.choice(pool)

    def fill(template: str) -> str:
        n1, n2 = rng.sample(_NAMES, 2)
        j1, j2 = rng.sample(_JOBS, 2)
        p1, p2 = rng.sample(_PARTS, 2)
        return template.format(name=n1, name2=n2, job=j1, job2=j2, place=rng.choice(_PLACES),
                               genre=rng.choice(_GENRES), part=p1, part2=p2, adj=words("adj"), adj2=words("adj"),
                               verb=words("verb"), end=words("end"), score=words("score"), adv=rng.choice(_ADV))

    sents = [fill(rng.choice(_NEUTRAL)) for _ in range(rng.randint(1, 3))]
    sents += [fill(rng.choice(_OPINION)) for _ in range(rng.randint(2, 5))]
    rng.shuffle(sents)
    for i, s in enumerate(sents):
        r = rng.random()
        if r < 0.08:
            sents[i] = s.upper()
        elif r < 0.16:
            sents[i] = s.rstrip(".!") + "!" * rng.randint(2, 5)
    sep = [" ", " ", " ", " <br /><br />"]
    out = sents[0]
    for s in sents[1:]:
        out += rng.choice(sep) + s
    return out


def make_texts(n: int = 1000, seed: int = 0, noise: float = 0.1) -> tuple[list[str], list[str]]:
    """Return `n` generated reviews and their labels (`'positive'`/`'negative'`, balanced), reproducible by `seed`.

    >>> texts, labels = make_texts(2, seed=1)
    >>> len(texts), labels
    (2, ['negative', 'positive'])
    """
    if n < 0:
        raise ValueError(f"make_texts: n={n} must be >= 0.")
    if not 0 <= noise <= 0.5:
        raise ValueError(f"make_texts: noise={noise} must be in [0, 0.5] (0.5 makes the labels unlearnable).")
    rng = random.Random(seed)
    labels = ["negative" if i % 2 == 0 else "positive" for i in range(n)]
    return [_review(rng, lbl, noise) for lbl in labels], labels


def make_imdb_df(n: int = 1000, seed: int = 0, valid_pct: float = 0.2, noise: float = 0.1) -> pd.DataFrame:
    """A DataFrame shaped like fastai's `texts.csv` (IMDB_SAMPLE): columns `label`, `text`, `is_valid`.

    The last `valid_pct` of the shuffled rows are marked `is_valid`.
    """
    if not 0 <= valid_pct < 1:
        raise ValueError(f"make_imdb_df: valid_pct={valid_pct} must be in [0, 1).")
    texts, labels = make_texts(n, seed, noise)
    order = list(range(n))
    random.Random(seed + 1).shuffle(order)
    n_valid = int(round(n * valid_pct))
    return pd.DataFrame({"label": [labels[i] for i in order], "text": [texts[i] for i in order],
                         "is_valid": [k >= n - n_valid for k in range(n)]})


def make_imdb_sample(path: str | os.PathLike, n: int = 1000, seed: int = 0, valid_pct: float = 0.2,
                     noise: float = 0.1) -> Path:
    """Write `path/texts.csv` (see `make_imdb_df`) and return `path`, like `untar_data(URLs.IMDB_SAMPLE)` does.

    >>> import tempfile
    >>> p = make_imdb_sample(tempfile.mkdtemp(), n=10)
    >>> (p / "texts.csv").is_file()
    True
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    make_imdb_df(n, seed, valid_pct, noise).to_csv(path / "texts.csv", index=False)
    return path


def make_imdb_folder(path: str | os.PathLike, n: int = 1000, seed: int = 0, valid_pct: float = 0.2,
                     noise: float = 0.1, valid: str = "test") -> Path:
    """Write reviews as one `.txt` file each in IMDB's layout, `path/{train,test}/{neg,pos}/<i>.txt`, plus
    `path/unsup/` holding unlabelled reviews (a quarter of `n`, for language-model training); return `path`.
    """
    path = Path(path)
    df = make_imdb_df(n, seed, valid_pct, noise)
    for i, (label, text, is_valid) in enumerate(df.itertuples(index=False)):
        d = path / (valid if is_valid else "train") / ("pos" if label == "positive" else "neg")
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{i}.txt").write_text(text, encoding="utf-8")
    unsup = path / "unsup"
    unsup.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(make_texts(n // 4, seed + 7, noise)[0]):
        (unsup / f"{i}.txt").write_text(text, encoding="utf-8")
    return path
