"""tiers quickstart: one small model per application, trained offline on generated sample data.

    ./dev quickstart                 (or: hatch run quickstart [--out DIR] [--only vision text])

For each application it builds a sample dataset from data that installed packages ship
(scikit-learn's digits) or that tiers generates, shows a batch, runs `lr_find`, trains with
`fit_one_cycle` (a progress bar and a metrics table), shows results, and saves every figure as a
PNG under the output folder (default ./quickstart-out). Runs on CPU in a few minutes.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # a script writing PNGs: never open windows
import matplotlib.pyplot as plt  # noqa: E402


def save(fig_path: Path) -> Path:
    """Save the current matplotlib figure and close it."""
    plt.gcf().savefig(fig_path, dpi=80, bbox_inches="tight")
    plt.close("all")
    print(f"   saved {fig_path}")
    return fig_path


def train_and_plot(learn, out: Path, name: str, epochs: int, show_results: str = "png", lr: float | None = None,
                   **fit_kwargs) -> float:
    """lr_find, fit_one_cycle, then the loss curve and show_results as PNGs (`show_results="print"` for the
    applications whose results are a table)."""
    suggestion = learn.lr_find(show_plot=True)
    save(out / f"{name}_lr_find.png")
    suggested = float(getattr(suggestion, "valley", None) or suggestion[0])
    print(f"   lr_find suggests {suggested:.2e}" + (f"; using {lr:.2e}" if lr else ""))
    # the tiny sample sets make the suggestion noisy; keep it in a sane range
    lr = lr or min(max(suggested, 1e-3), 3e-2)
    learn.fit_one_cycle(epochs, lr, **fit_kwargs)
    learn.recorder.plot_loss()
    save(out / f"{name}_loss.png")
    if show_results is None:
        pass
    elif show_results == "png":
        learn.show_results(max_n=6)
        save(out / f"{name}_show_results.png")
    elif show_results == "print":
        learn.show_results(max_n=6)
    return lr


def vision(out: Path, data: Path) -> str:
    """Digit classification on a folder of 28x28 digit images (the paper's section 2.1), with GPU-style batch
    augmentation composed into one interpolation."""
    from functools import partial

    from tiers.vision.all import (
        ImageDataLoaders,
        PILImageBW,
        accuracy,
        aug_transforms,
        make_digits_folder,
        vision_learner,
        xresnet18,
    )

    path = make_digits_folder(data / "digits")  # train/ and valid/ folders of 0..9, from scikit-learn's digits
    dls = ImageDataLoaders.from_folder(path, bs=64, img_cls=PILImageBW,
                                       batch_tfms=aug_transforms(do_flip=False, max_rotate=10, max_warp=0.1,
                                                                 max_lighting=0.1))
    dls.show_batch(max_n=9)
    save(out / "vision_show_batch.png")
    learn = vision_learner(dls, partial(xresnet18, widen=0.25), pretrained=False, metrics=accuracy)
    train_and_plot(learn, out, "vision", epochs=8)
    return f"accuracy {learn.validate()[1]:.3f}"


def text(out: Path, data: Path) -> str:
    """ULMFiT on an IMDB-sample-like corpus (the paper's section 2.2): a language model on the reviews,
    then a classifier on its encoder with gradual unfreezing."""
    import pandas as pd

    from tiers.text.all import (
        AWD_LSTM,
        Perplexity,
        TextDataLoaders,
        accuracy,
        awd_lstm_clas_config,
        awd_lstm_lm_config,
        language_model_learner,
        make_imdb_sample,
        text_classifier_learner,
    )

    path = make_imdb_sample(data / "imdb_sample", n=400)
    df = pd.read_csv(path / "texts.csv")
    size = dict(emb_sz=48, n_hid=96, n_layers=2)  # a small AWD-LSTM: CPU minutes, not hours
    # No pretrained weights offline: the language model learns English from the reviews themselves.
    dls_lm = TextDataLoaders.from_df(df, path=path, text_col="text", is_lm=True, valid_col="is_valid", bs=32,
                                     seq_len=40)
    dls_lm.show_batch(max_n=2)
    lm = language_model_learner(dls_lm, AWD_LSTM, config=dict(awd_lstm_lm_config, **size), pretrained=False,
                                metrics=[accuracy, Perplexity()])
    train_and_plot(lm, out, "text_lm", epochs=4, show_results=None, lr=2e-2)
    print("   generated:", lm.predict("The plot was", n_words=10, temperature=0.75))
    lm.save_encoder("quickstart_encoder")

    dls = TextDataLoaders.from_df(df, path=path, text_col="text", label_col="label", valid_col="is_valid",
                                  text_vocab=dls_lm.vocab, bs=16)
    dls.show_batch(max_n=3)  # text batches show as a table of decoded text
    learn = text_classifier_learner(dls, AWD_LSTM, config=dict(awd_lstm_clas_config, **size), pretrained=False,
                                    metrics=accuracy)
    learn.load_encoder("quickstart_encoder")
    learn.fit_one_cycle(1, 1e-2)  # the head only (the encoder is frozen)
    learn.freeze_to(-2)
    learn.fit_one_cycle(1, 1e-2)  # then the last LSTM layer too
    learn.unfreeze()
    train_and_plot(learn, out, "text", epochs=6, show_results="print", lr=1e-2)
    return f"accuracy {learn.validate()[1]:.3f}"


def tabular(out: Path, data: Path) -> str:
    """Income prediction on an adult-like sample (the paper's section 2.3)."""
    from tiers.tabular.all import (
        Categorify,
        FillMissing,
        Normalize,
        TabularDataLoaders,
        accuracy,
        tabular_learner,
    )
    from tiers.tabular.samples import make_adult_sample

    csv = make_adult_sample(data / "adult_sample")
    dls = TabularDataLoaders.from_csv(
        csv, y_names="salary", cat_names=["workclass", "education", "marital-status", "occupation", "relationship", "race"],
        cont_names=["age", "fnlwgt", "education-num"], procs=[Categorify, FillMissing, Normalize], bs=64)
    dls.show_batch(max_n=5)  # tabular batches show as a DataFrame
    learn = tabular_learner(dls, layers=[200, 100], metrics=accuracy)
    train_and_plot(learn, out, "tabular", epochs=3, show_results="print")
    return f"accuracy {learn.validate()[1]:.3f}"


def collab(out: Path, data: Path) -> str:
    """Rating prediction on a MovieLens-sample-like ratings.csv (the paper's section 2.4)."""
    from tiers.collab.all import CollabDataLoaders, collab_learner
    from tiers.collab.samples import make_ratings_sample

    folder = data / "movie_lens_sample"
    # ratings from a known rank-3 model plus known noise: the noise is the best RMSE anything can reach
    noise_floor = make_ratings_sample(folder, n_users=300, n_items=400, n_ratings=60000, noise=0.3)
    dls = CollabDataLoaders.from_csv(folder / "ratings.csv", bs=256, seed=0)
    dls.show_batch(max_n=5)
    learn = collab_learner(dls, n_factors=20, y_range=(0, 5.5))
    train_and_plot(learn, out, "collab", epochs=8, show_results="print", wd=0.3)
    rmse = learn.validate()[0] ** 0.5
    return f"valid RMSE {rmse:.3f} (noise floor {noise_floor:.3f})"


APPS = {"vision": vision, "text": text, "tabular": tabular, "collab": collab}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="quickstart-out", help="folder for the PNGs and the generated data")
    ap.add_argument("--only", nargs="*", choices=list(APPS), help="run only these applications")
    args = ap.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    import torch

    from tiers.tensors import set_seed

    set_seed(0)  # python, numpy and torch: the same figures on every run
    # Small models on a CPU: one thread avoids the cost of splitting tiny ops across cores.
    torch.set_num_threads(1)
    results, start = {}, time.perf_counter()
    for name in args.only or list(APPS):
        print(f"\n=== {name}: {APPS[name].__doc__} ===", flush=True)
        t = time.perf_counter()
        try:
            results[name] = (APPS[name](out, out / "data"), time.perf_counter() - t)
        except Exception:
            traceback.print_exc()
            results[name] = ("FAILED (traceback above)", time.perf_counter() - t)
    print("\n=== summary ===")
    for name, (summary, secs) in results.items():
        print(f"  {name:<8} {summary:<40} {secs:6.1f} s")
    print(f"  total {time.perf_counter() - start:.0f} s; figures in {out}")
    return 1 if any(s.startswith("FAILED") for s, _ in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
