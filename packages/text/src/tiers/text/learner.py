"""ULMFiT learners: `language_model_learner` (fine-tune a pretrained language model, save its encoder, generate
text) and `text_classifier_learner` (load that encoder, then train with gradual unfreezing).

>>> learn = language_model_learner(dls_lm, AWD_LSTM, pretrained=False)    # doctest: +SKIP
>>> learn.fit_one_cycle(1, 1e-2); learn.save_encoder("enc")               # doctest: +SKIP
>>> clas = text_classifier_learner(dls_clas, AWD_LSTM, pretrained=False)  # doctest: +SKIP
>>> clas.load_encoder("enc"); clas.fit_one_cycle(1, 1e-2)                 # doctest: +SKIP
"""

import io
import os
import pickle
import urllib.error
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from tiers.data import DownloadError, URLs, untar_data
from tiers.dispatch import L
from tiers.text.awdlstm import AWD_LSTM
from tiers.text.callbacks import _reset, rnn_cbs
from tiers.text.loaders import _find_tokenizer
from tiers.text.models import SequentialRNN, get_language_model, get_text_classifier, model_meta
from tiers.text.rules import BOS, PAD, TK_MAJ, TK_REP, TK_UP, TK_WREP, UNK
from tiers.text.transforms import Numericalize
from tiers.train import CrossEntropyLossFlat, Learner, trainable_params
from tiers.train.io.paths import learner_file
from tiers.train.io.persist import StateMismatchError, check_model_state, save_state

__all__ = [
    "match_embeds", "load_ignore_keys", "clean_raw_keys", "TextLearner", "LMLearner", "decode_spec_tokens",
    "language_model_learner", "text_classifier_learner",
]

# fastai's pretrained WikiText-103 AWD-LSTMs: archives holding a weights `.pth` and a vocabulary `.pkl`, fetched once
# by tiers.data's `untar_data` into its `model` folder. Configurable: set `model_meta[AWD_LSTM]["url"]` (or
# "url_bwd") to another address (`file://` works), or point tiers.data's model server (`TIERS_MODEL_URL`, or
# `model_url` in its config) at a copy. The data mirror (`TIERS_DATA_URL`) is never asked for models.
model_meta[AWD_LSTM].setdefault("url", URLs.WT103_FWD)
model_meta[AWD_LSTM].setdefault("url_bwd", URLs.WT103_BWD)


# ---------------------------------------------------------------------------------------------------- weights
def _match_rows(wgts: torch.Tensor, old_vocab: Sequence[str], new_vocab: Sequence[str]) -> torch.Tensor:
    "The rows of `wgts` (one per token of `old_vocab`) re-indexed to `new_vocab`; tokens it lacks get the mean row."
    old_o2i = {w: i for i, w in enumerate(old_vocab)}
    idx = torch.tensor([old_o2i.get(w, -1) for w in new_vocab], dtype=torch.long, device=wgts.device)
    missing = idx < 0
    new_wgts = wgts[idx.clamp(min=0)].clone()
    new_wgts[missing] = wgts.mean(0)
    return new_wgts


def match_embeds(old_wgts: dict, old_vocab: Sequence[str], new_vocab: Sequence[str]) -> dict:
    """Re-index the embedding (and tied decoder) rows of the state dict `old_wgts` from `old_vocab` to `new_vocab`;
    tokens the old vocabulary lacks get the mean embedding (and mean decoder bias)."""
    if "0.encoder.weight" not in old_wgts:
        raise KeyError("match_embeds: the weights have no '0.encoder.weight' (not a language model state dict?); "
                       f"keys start with {list(old_wgts)[:3]}.")
    wgts, bias = old_wgts["0.encoder.weight"], old_wgts.get("1.decoder.bias")
    new_wgts = _match_rows(wgts, old_vocab, new_vocab)
    old_wgts["0.encoder.weight"] = new_wgts
    if "0.encoder_dp.emb.weight" in old_wgts:
        old_wgts["0.encoder_dp.emb.weight"] = new_wgts.clone()
    old_wgts["1.decoder.weight"] = new_wgts.clone()
    if bias is not None:
        old_wgts["1.decoder.bias"] = _match_rows(bias, old_vocab, new_vocab)
    return old_wgts


def clean_raw_keys(wgts: dict) -> dict:
    """Drop the stale copies `*.module.weight_hh_l0` that old checkpoints keep next to the `*.weight_hh_l0_raw` of a
    `WeightDropout` (the raw weight is the real parameter)."""
    for k in [k for k in wgts if k.endswith("_raw")]:
        stale = k[: -len(k.split(".")[-1])] + "module." + k.split(".")[-1][: -len("_raw")]
        wgts.pop(stale, None)
    return wgts


def load_ignore_keys(model: nn.Module, wgts: dict) -> Any:
    """Load `wgts` into `model` by position, ignoring the key names (a language model's encoder weights into a
    classifier's encoder, whose keys have another prefix). Shapes must match one to one."""
    sd = model.state_dict()
    if len(wgts) < len(sd):
        raise ValueError(f"load_ignore_keys: {len(wgts)} weights for a model with {len(sd)} entries.")
    for (k1, t1), (k2, t2) in zip(sd.items(), wgts.items()):
        if t1.shape != t2.shape:
            raise ValueError(f"load_ignore_keys: {k2!r} has shape {tuple(t2.shape)} but the model's {k1!r} has "
                             f"{tuple(t1.shape)}; the architecture or its config differs from the saved one.")
        sd[k1] = t2.detach().clone()
    return model.load_state_dict(sd)


class _VocabUnpickler(pickle.Unpickler):
    # A downloaded vocabulary is a pickle: allow plain containers and strings only, never arbitrary objects.
    _ok = {("builtins", "list"), ("builtins", "dict"), ("builtins", "str"), ("builtins", "tuple"),
           ("collections", "OrderedDict"), ("collections", "defaultdict"), ("builtins", "int")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ok:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"vocabulary pickle refers to {module}.{name}; only lists of strings are read.")


def _load_vocab(fname: str | os.PathLike) -> list[str]:
    vocab = _VocabUnpickler(io.BytesIO(Path(fname).read_bytes())).load()
    if isinstance(vocab, dict):  # {'itos': [...]} in older files
        vocab = vocab.get("itos", list(vocab))
    if not isinstance(vocab, (list, tuple)) or not all(isinstance(w, str) for w in vocab):
        raise ValueError(f"The vocabulary file {str(fname)!r} does not hold a list of tokens.")
    return list(vocab)


def _get_text_vocab(dls: Any) -> list[str]:
    vocab = dls.vocab
    if isinstance(vocab, (list, tuple, L)) and len(vocab) and not isinstance(vocab[0], str):
        vocab = vocab[0]  # a classifier's loaders hold [text vocab, label vocab]
    return list(vocab)


def _text_vocab_or_none(dls: Any) -> list[str] | None:
    "The text vocabulary of `dls`, or None for loaders without one (a model trained on other data)."
    try:
        vocab = _get_text_vocab(dls)
    except (AttributeError, TypeError, IndexError):
        return None
    return vocab if vocab and all(isinstance(w, str) for w in vocab) else None


# save_encoder keeps the vocabulary in the state dict's `_metadata` (torch's per-module versions, kept by
# torch.save/torch.load), in the root module's entry: it travels in the same file as the weights, and the file is
# still a plain state dict (`encoder.load_state_dict(torch.load(f))` ignores it, as fastai's load_encoder does).
_VOCAB_META = "tiers_vocab"


def _with_vocab(state: dict, vocab: list[str] | None) -> dict:
    if vocab is not None:
        meta = getattr(state, "_metadata", None)
        if meta is None:  # a state_dict() always has it; a dict built by hand does not
            meta = OrderedDict()
            setattr(state, "_metadata", meta)  # noqa: B010 (an attribute a dict type does not declare)
        meta[""] = {**meta.get("", {}), _VOCAB_META: list(vocab)}
    return state


def _saved_vocab(state: dict) -> list[str] | None:
    "The vocabulary `save_encoder` stored with `state`, or None for an encoder saved without one."
    vocab = (getattr(state, "_metadata", None) or {}).get("", {}).get(_VOCAB_META)
    return list(vocab) if isinstance(vocab, list) and all(isinstance(w, str) for w in vocab) else None


def _embedding_keys(encoder: nn.Module) -> list[str]:
    # by module, duplicates kept: AWD_LSTM's embedding is in the state twice (`encoder`, `encoder_dp.emb`)
    return [f"{n}.weight" for n, m in encoder.named_modules(remove_duplicate=False) if isinstance(m, nn.Embedding)]


def _remap_encoder(wgts: dict, encoder: nn.Module, old_vocab: list[str], new_vocab: list[str], file: Path) -> None:
    "Re-index the embedding rows of the encoder state `wgts` (in place) from `old_vocab` to `new_vocab`; warn."
    keys = [k for k in _embedding_keys(encoder)
            if isinstance(wgts.get(k), torch.Tensor) and wgts[k].ndim == 2 and wgts[k].shape[0] == len(old_vocab)]
    if not keys:
        raise ValueError(f"load_encoder: {file} was saved with another vocabulary ({len(old_vocab)} tokens) than this "
                         f"learner's ({len(new_vocab)}), and its embedding rows could not be found to match them by "
                         "token. Build the classifier's loaders with the language model's vocabulary "
                         "(text_vocab=dls_lm.vocab).")
    for k in keys:
        wgts[k] = _match_rows(wgts[k], old_vocab, new_vocab)
    known = set(old_vocab)
    new = [w for w in new_vocab if w not in known and w != "xxfake"]  # make_vocab's padding: untrained either way
    if new:
        warnings.warn(f"load_encoder: this learner's vocabulary ({len(new_vocab)} tokens) is not the one {file} was "
                      f"saved with ({len(old_vocab)} tokens); the embedding rows were matched by token, and {len(new)} "
                      f"of this learner's tokens were not in the language model's vocabulary, so they start from the "
                      f"mean embedding (e.g. {new[:5]}). To keep every trained embedding, build the classifier's "
                      "loaders with the language model's vocabulary: text_vocab=dls_lm.vocab.",
                      UserWarning, stacklevel=3)


# ---------------------------------------------------------------------------------------------------- learners
class TextLearner(Learner):
    """A `Learner` for recurrent text models: adds `rnn_cbs(alpha, beta)` (hidden-state resets and AWD-LSTM's
    activation penalties), uses ULMFiT's momentums, and can save, load and transfer the encoder."""

    def __init__(self, dls: Any, model: nn.Module, alpha: float = 2.0, beta: float = 1.0,
                 moms: tuple[float, float, float] = (0.8, 0.7, 0.8), **kwargs: Any):
        super().__init__(dls, model, moms=moms, **kwargs)
        self.add_cbs(rnn_cbs(alpha=alpha, beta=beta))

    def _encoder(self, model: nn.Module | None = None) -> nn.Module:
        m = self.model if model is None else model
        if not hasattr(m, "__getitem__"):
            raise TypeError(f"TextLearner: the model is a {type(m).__name__}, which has no parts to take the encoder "
                            "from; the encoder methods need (encoder, head) parts, as get_language_model and "
                            "get_text_classifier build (a SequentialRNN).")
        encoder = cast(nn.Sequential, m)[0]  # indexable, checked above
        return getattr(encoder, "module", encoder)  # a classifier's SentenceEncoder wraps the AWD_LSTM

    def export_onnx(self, fname: str | Path = "model.onnx", **kwargs: Any) -> Path:
        """Write the text classifier as ONNX (`tiers.train.io.onnx.export_onnx`, same options): the graph takes int64
        token ids `(batch, seq_len)` padded with `xxpad` (id 1), both axes dynamic, and returns what `get_preds`
        does. The model is exported through a stateless twin (`tiers.text.onnx_export`), checked first against the
        model itself on a validation batch. A language model or a bidirectional encoder is refused, saying why."""
        from tiers.text.onnx_export import check_twin, onnx_text_classifier

        twin = onnx_text_classifier(self.model)
        dl = kwargs.get("dl")
        check_twin(twin, self.model, (self.dls.valid if dl is None else dl).one_batch()[0])
        model = self.model
        self.model = twin  # what train's exporter wraps and traces; the same parameters
        try:
            return super().export_onnx(fname, **kwargs)
        finally:
            self.model = model

    def save_encoder(self, file: str) -> Path:
        """Save the encoder's weights, with the data's text vocabulary, to `path/model_dir/file.pth` (an absolute
        path as it is; what `load_encoder` reads); returns the path. The file is a plain state dict: the vocabulary
        rides in its metadata."""
        state = self._encoder().state_dict()
        return save_state(self, file, _with_vocab(state, _text_vocab_or_none(self.dls)))  # atomic, rank 0 only

    def load_encoder(self, file: str, device: Any = None) -> "TextLearner":
        """Load encoder weights saved by `save_encoder` (e.g. from a fine-tuned language model), then `freeze`.

        When the file holds the language model's vocabulary and this learner's differs, the embedding rows are
        matched by token (tokens the language model lacks start from the mean embedding, with a warning), as
        `load_pretrained` does. All or nothing: a file that does not fit leaves the model as it was."""
        target = learner_file(self, file)
        if not target.is_file():
            raise FileNotFoundError(f"load_encoder: no encoder file {str(target)!r}; save one with save_encoder.")
        device = device if device is not None else next(self.model.parameters()).device
        wgts = torch.load(target, map_location=device, weights_only=True)
        encoder = self._encoder()
        old_vocab, new_vocab = _saved_vocab(wgts), _text_vocab_or_none(self.dls)
        wgts = clean_raw_keys(wgts)
        if old_vocab is not None and new_vocab is not None and old_vocab != new_vocab:
            _remap_encoder(wgts, encoder, old_vocab, new_vocab, target)
        try:
            check_model_state(target, encoder, wgts)  # before copying anything: a failed load changes nothing
        except StateMismatchError as e:
            rows = {tuple(wgts[k].shape)[0] for k in _embedding_keys(encoder) if isinstance(wgts.get(k), torch.Tensor)}
            if old_vocab is None and new_vocab is not None and rows and len(new_vocab) not in rows:
                e.add_note(f"The encoder's embedding has {min(rows)} rows but this learner's vocabulary has "
                           f"{len(new_vocab)} tokens: the classifier's loaders were built with another vocabulary "
                           "than the language model's. Build them with text_vocab=dls_lm.vocab "
                           "(TextDataLoaders.from_df(..., text_vocab=dls_lm.vocab), or TextBlock.from_df(..., vocab=dls_lm.vocab)).")
            raise
        encoder.load_state_dict(wgts)
        self.freeze()
        return self

    def load_pretrained(self, wgts_fname: str | os.PathLike, vocab_fname: str | os.PathLike,
                        model: nn.Module | None = None) -> "TextLearner":
        """Load pretrained language-model weights `wgts_fname` made with the vocabulary `vocab_fname` (a pickled
        list) into `model` (default this learner's), mapping the embeddings onto this data's vocabulary; `freeze`."""
        old_vocab = _load_vocab(vocab_fname)
        new_vocab = _get_text_vocab(self.dls)
        wgts = torch.load(wgts_fname, map_location="cpu", weights_only=True)
        if "model" in wgts:  # saved with its optimizer state
            wgts = wgts["model"]
        wgts = match_embeds(dict(wgts), old_vocab, new_vocab)
        load_ignore_keys(self.model if model is None else model, clean_raw_keys(wgts))
        self.freeze()
        return self


def decode_spec_tokens(tokens: Sequence[str]) -> list[str]:
    """Undo the case and repetition rules in `tokens`: `xxmaj w` -> `W`, `xxup w` -> `W` in capitals, `xxrep n c`
    -> `c` n times, `xxwrep n w` -> `w` n times. A rule token while another is pending replaces it, as in fastai
    (`xxmaj xxmaj the` -> `The`: early language models generate such runs), except the case rule the tokenizer puts
    inside a repetition (`xxwrep 3 xxmaj the` -> `The The The`).

    >>> decode_spec_tokens(["xxmaj", "hi", "xxup", "you", "xxrep", "3", "!", "xxwrep", "2", "so"])
    ['Hi', 'YOU', '!!!', 'so', 'so']
    >>> decode_spec_tokens(["xxmaj", "xxmaj", "the", "xxwrep", "2", "xxup", "no"])
    ['The', 'NO', 'NO']
    """
    out: list[str] = []
    case: str | None = None  # TK_MAJ or TK_UP, for the next word
    rep: str | None = None  # TK_REP or TK_WREP, for the next word once its count `n` is read
    n: int | None = None
    for t in tokens:
        if t in (TK_MAJ, TK_UP):
            if rep is not None and n is None:
                rep = None  # a repetition without its count: replaced
            case = t
        elif t in (TK_REP, TK_WREP):
            rep, n, case = t, None, None
        elif rep is not None and n is None:
            try:
                n = int(t)
            except ValueError:  # not a count: keep the word, drop the rule
                out.append(t)
                rep = None
        else:
            w = t.upper() if case == TK_UP else t[:1].upper() + t[1:].lower() if case == TK_MAJ else t
            if rep is None or n is None:
                out.append(w)
            else:
                out.extend([w * n] if rep == TK_REP else [w] * n)
            case, rep, n = None, None, None
    return out


class LMLearner(TextLearner):
    """A `TextLearner` for language models, with `predict` generating text."""

    def get_preds(self, *args: Any, concat_dim: int = 1, **kwargs: Any) -> tuple:
        """Predictions as `Learner.get_preds`, batches joined along the sequence (dim 1): row `r` of the result is
        the `r`-th contiguous part of the stream, whatever the length of the last batch."""
        kwargs["concat_dim"] = concat_dim
        return super().get_preds(*args, **kwargs)

    def _text_tfms(self) -> tuple[Any, Numericalize]:
        ds = self.dls.train_ds
        tok, tl = _find_tokenizer(ds)
        tls = list(getattr(ds, "tls", None) or [ds])
        num = next((f for t in tls for f in getattr(getattr(t, "tfms", None), "fs", None) or []
                    if isinstance(f, Numericalize)), None)
        if tok is None or num is None:
            raise TypeError("LMLearner.predict needs loaders built with a Tokenizer and Numericalize "
                            "(TextDataLoaders or TextBlock).")
        return tok, num

    # fastai's API: a language model's predict continues a text (Learner.predict predicts one item)
    def predict(self, text: str, n_words: int = 1, no_unk: bool = True,  # type: ignore[override]
                temperature: float = 1.0, min_p: float | None = None, no_bar: bool = False,
                decoder: Callable = decode_spec_tokens, only_last_word: bool = False) -> str:
        """Continue `text` with `n_words` tokens sampled from the model (softmax at `temperature`; tokens below
        probability `min_p` excluded; never `xxunk` when `no_unk`) and return the decoded text.

        The prompt is read once and each new token is fed alone, the hidden state carrying the context (linear in
        `n_words`); `only_last_word` and `no_bar` are accepted for fastai compatibility.
        """
        if temperature <= 0:
            raise ValueError(f"predict: temperature={temperature} must be > 0.")
        tok, num = self._text_tfms()
        ids = num(tok(text)).tolist()
        vocab = num.vocab
        assert vocab is not None  # num() above raised otherwise
        model = self.model
        device = next(model.parameters()).device
        banned = [i for i, w in enumerate(vocab) if w in (PAD, "xxfake") or (no_unk and w == UNK)]
        was_training = model.training
        model.eval()
        _reset(model)  # the hidden state of a recurrent model; one without (no `reset`) has nothing to reset
        try:
            with torch.no_grad():
                inp = torch.tensor([ids], device=device)
                for _ in range(n_words):
                    out = model(inp)
                    logits = (out[0] if isinstance(out, (tuple, list)) else out)[0, -1].float()
                    logits[banned] = -float("inf")
                    probs = torch.softmax(logits / temperature, dim=-1)
                    if min_p is not None:
                        keep = probs >= min_p
                        if keep.any():
                            probs = probs * keep
                        else:
                            warnings.warn(f"predict: no token has probability >= min_p={min_p}; ignoring min_p.",
                                          stacklevel=2)
                    idx = int(torch.multinomial(probs, 1).item())
                    ids.append(idx)
                    inp = torch.tensor([[idx]], device=device)
        finally:
            _reset(model)
            model.train(was_training)
        tokens = [vocab[i] for i in ids if vocab[i] not in (BOS, PAD)]
        return tok.sep.join(decoder(tokens))


def _unreachable(e: BaseException) -> str | None:
    """Why the server could not be reached, when that is what the download error `e` comes down to (the innermost
    exception it chains: refused, unknown host, timed out...); None for any other failure (an HTTP status, a file
    failing its checks), whose own message says more."""
    while e.__cause__ is not None:
        e = e.__cause__
    if isinstance(e, urllib.error.HTTPError | DownloadError):
        return None
    why: str | BaseException = e.reason if isinstance(e, urllib.error.URLError) else e
    return (why.strerror or str(why) or type(why).__name__) if isinstance(why, OSError) else None


def _pretrained_files(meta: dict, backwards: bool, arch: Any) -> tuple[Path, Path] | None:
    from tiers.data import resolve_url

    url = meta.get("url_bwd" if backwards else "url")
    if url is None:
        warnings.warn("There are no pretrained weights for this architecture; training from scratch.", stacklevel=3)
        return None
    try:
        # untar_data fetches it from the model server when one is configured (resolve_url says where).
        model_path = Path(untar_data(url, c_key="model"))
    except DownloadError as e:
        reason = _unreachable(e)
        if reason is not None:  # offline, or a wrong server: the fix is a setting, not the registry or the URL
            name = getattr(arch, "__name__", str(arch))
            raise DownloadError(
                f"Could not download the pretrained {name}{' (backward)' if backwards else ''} weights from "
                f"{resolve_url(url)} ({reason}); pass pretrained=False to train from scratch, or set TIERS_MODEL_URL "
                "to a server that has them.") from e
        raise DownloadError(
            f"The pretrained model {url} could not be downloaded from {resolve_url(url)}: {e} Point TIERS_MODEL_URL "
            "(or model_url in the tiers config) at a server that has it, set model_meta[arch]['url'] (or 'url_bwd') "
            "to another address, or pass pretrained=False.") from e
    wgts, vocab = (next(iter(sorted(model_path.glob(f"**/*.{ext}"))), None) for ext in ("pth", "pkl"))
    if wgts is None or vocab is None:
        raise FileNotFoundError(f"The pretrained model at {str(model_path)!r} (from {url}) lacks a .pth weights file "
                                "or a .pkl vocabulary; remove it to download again.")
    return wgts, vocab


def language_model_learner(dls: Any, arch: Callable = AWD_LSTM, config: dict | None = None, drop_mult: float = 1.0,
                           backwards: bool = False, pretrained: bool = True,
                           pretrained_fnames: Sequence[str] | None = None, **kwargs: Any) -> LMLearner:
    """An `LMLearner` with `get_language_model(arch, len(vocab), config, drop_mult)`, flattened cross-entropy, and the
    architecture's parameter groups. With `pretrained`, the weights come from the architecture's URL (WikiText-103
    for AWD-LSTM, downloaded once) or from `pretrained_fnames` (`(weights, vocab)` names in `path/model_dir`, without
    extension), and the embeddings are mapped to this vocabulary. `kwargs` go to the Learner (`metrics`...)."""
    if pretrained_fnames is not None and (isinstance(pretrained_fnames, str | os.PathLike)
                                          or len(pretrained_fnames) != 2):
        raise ValueError(f"language_model_learner: pretrained_fnames={pretrained_fnames!r} must name two files, the "
                         "weights and the vocabulary, without extension, in path/model_dir: e.g. "
                         "pretrained_fnames=('lm_wgts', 'lm_vocab') for lm_wgts.pth and lm_vocab.pkl.")
    vocab = _get_text_vocab(dls)
    meta = model_meta[arch] if arch in model_meta else {}
    model = get_language_model(arch, len(vocab), config=config, drop_mult=drop_mult)
    learn = LMLearner(dls, model, loss_func=kwargs.pop("loss_func", CrossEntropyLossFlat()),
                      splitter=kwargs.pop("splitter", meta.get("split_lm") or trainable_params), **kwargs)
    fnames: tuple[Path, Path] | None
    if pretrained_fnames is not None:
        wgts_fn, vocab_fn = pretrained_fnames
        fnames = (learn.path / learn.model_dir / f"{wgts_fn}.pth", learn.path / learn.model_dir / f"{vocab_fn}.pkl")
    elif pretrained:
        fnames = _pretrained_files(meta, backwards, arch)
    else:
        fnames = None
    if fnames is not None:
        learn.load_pretrained(*fnames)
    return learn


def _refuse_one_class(dls: Any, n_out: int) -> None:
    "Refuse labels of a single class: cross-entropy over one output is always 0, so nothing would be learned."
    v = getattr(dls, "vocab", None)
    labels = v[1] if isinstance(v, list | tuple | L) and len(v) == 2 else None  # [text vocab, label vocab]
    if n_out == 1 and labels is not None and len(labels) == 1 and not isinstance(labels[0], list | tuple):
        raise ValueError(f"text_classifier_learner: the labels hold one class only ({labels[0]!r}), so a classifier "
                         "has nothing to learn (its loss is always 0); check the label column and the split, or pass "
                         "n_out= and a loss for a one-output model.")


def text_classifier_learner(dls: Any, arch: Callable = AWD_LSTM, seq_len: int = 72, config: dict | None = None,
                            backwards: bool = False, pretrained: bool = True, drop_mult: float = 0.5,
                            n_out: int | None = None, lin_ftrs: Sequence[int] | None = None,
                            ps: Sequence[float] | None = None, max_len: int = 72 * 20,
                            y_range: tuple[float, float] | None = None, **kwargs: Any) -> TextLearner:
    """A `TextLearner` with `get_text_classifier(...)` for `n_out` classes (default: the data's) and the
    architecture's parameter groups (embedding, each LSTM layer, head), so `freeze_to(-2)`, `freeze_to(-3)`... unfreeze
    it gradually. With `pretrained`, the encoder starts from the architecture's pretrained language model and the
    learner is frozen; usually you `load_encoder` your fine-tuned one instead (pass `pretrained=False` offline)."""
    from tiers.data import get_c

    vocab = _get_text_vocab(dls)
    if n_out is None:
        n_out = get_c(dls)
        _refuse_one_class(dls, n_out)
    if not n_out:
        raise ValueError("text_classifier_learner: could not infer the number of classes from the loaders; pass n_out.")
    meta = model_meta[arch] if arch in model_meta else {}
    model = get_text_classifier(arch, len(vocab), n_out, seq_len=seq_len, config=config, y_range=y_range,
                                drop_mult=drop_mult, lin_ftrs=lin_ftrs, ps=ps, max_len=max_len)
    learn = TextLearner(dls, model, splitter=kwargs.pop("splitter", meta.get("split_clas") or trainable_params),
                        **kwargs)
    if pretrained:
        fnames = _pretrained_files(meta, backwards, arch)
        if fnames is not None:
            learn.load_pretrained(*fnames, model=cast(SequentialRNN, learn.model)[0])  # get_text_classifier's
            learn.freeze()
    return learn
