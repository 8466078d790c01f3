"""Language models and classifiers built on a recurrent encoder such as `AWD_LSTM` (ULMFiT, Howard and Ruder 2018).

>>> lm = get_language_model(AWD_LSTM, 50, config=dict(awd_lstm_lm_config, emb_sz=8, n_hid=16, n_layers=2))
>>> out, raw, dropped = lm(torch.randint(0, 50, (2, 5)))
>>> out.shape
torch.Size([2, 5, 50])
"""

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from tiers.text.awdlstm import (
    AWD_LSTM,
    RNNDropout,
    awd_lstm_clas_config,
    awd_lstm_clas_split,
    awd_lstm_lm_config,
    awd_lstm_lm_split,
)

__all__ = [
    "LinearDecoder", "SequentialRNN", "get_language_model", "SentenceEncoder", "masked_concat_pool",
    "PoolingLinearClassifier", "get_text_classifier", "model_meta",
]

# What each architecture needs to be built into a language model or a classifier. Higher layers (the learner) add
# the pretrained-weight URLs; a user registers a new architecture by adding an entry.
model_meta: dict[type, dict[str, Any]] = {
    AWD_LSTM: {"hid_name": "emb_sz", "config_lm": awd_lstm_lm_config, "split_lm": awd_lstm_lm_split,
               "config_clas": awd_lstm_clas_config, "split_clas": awd_lstm_clas_split},
}


def _meta(arch: Any, where: str) -> dict[str, Any]:
    if arch not in model_meta:
        raise KeyError(f"{where}: no model_meta entry for {getattr(arch, '__name__', arch)!r}; known: "
                       f"{[a.__name__ for a in model_meta]}. Register the architecture in tiers.text.models.model_meta.")
    return model_meta[arch]


class LinearDecoder(nn.Module):
    """Map the encoder's outputs to vocabulary logits, after `output_p` dropout; ties its weight to `tie_encoder`'s.

    Returns `(logits, raw_outputs, dropped_outputs)`: the last two feed `RNNRegularizer`'s activation penalties.
    """

    initrange = 0.1

    def __init__(self, n_out: int, n_hid: int, output_p: float = 0.1, tie_encoder: nn.Module | None = None,
                 bias: bool = True):
        super().__init__()
        self.decoder = nn.Linear(n_hid, n_out, bias=bias)
        self.decoder.weight.data.uniform_(-self.initrange, self.initrange)
        self.output_dp = RNNDropout(output_p)
        if bias:
            self.decoder.bias.data.zero_()
        if tie_encoder is not None:
            weight = tie_encoder.weight
            if not isinstance(weight, nn.Parameter):
                raise TypeError(f"LinearDecoder: tie_encoder ({type(tie_encoder).__name__}) has no weight parameter to "
                                "tie the decoder to; pass the embedding (nn.Embedding), or tie_encoder=None.")
            self.decoder.weight = weight

    def forward(self, inp: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        dp_inp = self.output_dp(inp)
        return self.decoder(dp_inp), inp, dp_inp


class SequentialRNN(nn.Sequential):
    """An `nn.Sequential` whose `reset()` resets every child that has one (the hidden state of the encoder)."""

    def reset(self) -> None:
        """Reset every child that has a `reset` method."""
        for c in self.children():
            r = getattr(c, "reset", None)
            if callable(r):
                r()


def _scaled_config(config: dict, drop_mult: float) -> dict:
    return {k: v * drop_mult if k.endswith("_p") else v for k, v in config.items()}


def get_language_model(arch: Callable, vocab_sz: int, config: dict | None = None,
                       drop_mult: float = 1.0) -> SequentialRNN:
    """Build `SequentialRNN(arch(vocab_sz, **config), LinearDecoder(...))`, every dropout `*_p` times `drop_mult`."""
    meta = _meta(arch, "get_language_model")
    config = _scaled_config(dict(meta["config_lm"] if config is None else config), drop_mult)
    tie_weights, output_p, out_bias = config.pop("tie_weights", True), config.pop("output_p", 0.1), config.pop("out_bias", True)
    init = config.pop("init", None)
    encoder = arch(vocab_sz, **config)
    decoder = LinearDecoder(vocab_sz, config[meta["hid_name"]], output_p,
                            tie_encoder=encoder.encoder if tie_weights else None, bias=out_bias)
    model = SequentialRNN(encoder, decoder)
    return model if init is None else model.apply(init)


def _pad_rows(t: Tensor, bs: int) -> Tensor:
    return t if t.size(0) >= bs else torch.cat([t, t.new_zeros(bs - t.size(0), *t.shape[1:])])


class SentenceEncoder(nn.Module):
    """Run a stateful encoder `module` over a whole (long) document in chunks of `bptt` tokens, keeping the outputs
    of the last `max_len` tokens (all if None). Returns `(outputs, pad_mask)`.

    Padding should put each row's text on a `bptt` boundary (see `pad_input_chunk`). With batches sorted by length
    (as `SortedDL` makes them), each chunk only runs the rows that have text in it, so padding costs no compute and
    never leaks into the hidden state; unsorted batches run whole, with rows that have not started kept at zero state.
    """

    def __init__(self, bptt: int, module: nn.Module, pad_idx: int = 1, max_len: int | None = None):
        super().__init__()
        self.bptt, self.module, self.pad_idx, self.max_len = bptt, module, pad_idx, max_len

    def reset(self) -> None:
        """Reset the wrapped encoder's hidden state."""
        r = getattr(self.module, "reset", None)
        if callable(r):
            r()

    def forward(self, inp: Tensor) -> tuple[Tensor, Tensor]:
        bs, sl = inp.shape
        self.reset()
        mask = inp == self.pad_idx
        outs, masks = [], []
        for i in range(0, sl, self.bptt):
            chunk = inp[:, i:min(i + self.bptt, sl)]
            active = ~mask[:, i]
            k = int(active.sum())
            if bool(active[:k].all()):
                # Sorted batch: the rows with text here are the first k; run only those.
                o = _pad_rows(self.module(chunk[:k]), bs) if k > 0 else None
            else:
                o = self.module(chunk)
                self._zero_unstarted(mask[:, :min(i + self.bptt, sl)].all(dim=1))
            if o is None:
                n = getattr(self.module, "emb_sz", None)
                o = inp.new_zeros(bs, chunk.size(1), n if n is not None else 1, dtype=torch.float)
            if self.max_len is None or sl - i <= self.max_len:
                outs.append(o)
                masks.append(mask[:, i:min(i + self.bptt, sl)])
        return torch.cat(outs, dim=1), torch.cat(masks, dim=1)

    def _zero_unstarted(self, unstarted: Tensor) -> None:
        hidden = getattr(self.module, "hidden", None)
        if not unstarted.any() or hidden is None:
            return
        keep = (~unstarted).to(hidden[0][0].dtype)[None, :, None]
        # (torch types any Module attribute as Tensor | Module; the encoder's hidden state is a list of (h, c))
        self.module.hidden = [(h * keep, c * keep) for h, c in hidden]  # type: ignore[assignment]


def masked_concat_pool(output: Tensor, mask: Tensor, bptt: int | None = None) -> Tensor:
    """Concatenate, per row, the output at the last real token, the max and the mean over real tokens (padding
    ignored): `(bs, seq_len, n)` to `(bs, 3 * n)`. `bptt` is accepted for fastai compatibility and not needed."""
    real = ~mask
    lens = real.sum(dim=1).clamp(min=1)
    avg_pool = output.masked_fill(mask[:, :, None], 0).sum(dim=1) / lens[:, None].to(output.dtype)
    max_pool = output.masked_fill(mask[:, :, None], -float("inf")).max(dim=1)[0]
    max_pool = torch.where(torch.isinf(max_pool), torch.zeros_like(max_pool), max_pool)
    # The index of the last real token, whatever the padding layout (front, back or both).
    last = (torch.arange(output.size(1), device=output.device)[None] * real).argmax(dim=1)
    return torch.cat([output[torch.arange(output.size(0), device=output.device), last], max_pool, avg_pool], 1)


def _lin_bn_drop(n_in: int, n_out: int, p: float, act: nn.Module | None) -> nn.Sequential:
    # BatchNorm, Dropout, Linear (no bias: the BatchNorm has one), activation: fastai's LinBnDrop layout.
    bn = nn.BatchNorm1d(n_in)
    bn.weight.data.fill_(1.0)
    bn.bias.data.fill_(1e-3)
    layers: list[nn.Module] = [bn]
    if p != 0:
        layers.append(nn.Dropout(p))
    layers.append(nn.Linear(n_in, n_out, bias=False))
    if act is not None:
        layers.append(act)
    return nn.Sequential(*layers)


class _SigmoidRange(nn.Module):
    def __init__(self, low: float, high: float):
        super().__init__()
        self.low, self.high = low, high

    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(x) * (self.high - self.low) + self.low


class PoolingLinearClassifier(nn.Module):
    """Classifier head: `masked_concat_pool` of the encoder outputs, then BatchNorm-Dropout-Linear blocks through
    `dims` with dropouts `ps` (ReLU between blocks), and a sigmoid into `y_range` if given."""

    def __init__(self, dims: Sequence[int], ps: Sequence[float], bptt: int, y_range: tuple[float, float] | None = None):
        super().__init__()
        if len(ps) != len(dims) - 1:
            raise ValueError(f"PoolingLinearClassifier: {len(ps)} dropout values ps={list(ps)} for {len(dims) - 1} "
                             f"layers (dims={list(dims)}); give one per layer.")
        acts = [nn.ReLU(inplace=True) for _ in range(len(dims) - 2)] + [None]
        layers: list[nn.Module] = [_lin_bn_drop(i, o, p, a) for i, o, p, a in zip(dims[:-1], dims[1:], ps, acts)]
        if y_range is not None:
            layers.append(_SigmoidRange(*y_range))
        self.bptt, self.layers = bptt, nn.Sequential(*layers)

    def forward(self, inp: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        out, mask = inp
        x = self.layers(masked_concat_pool(out, mask, self.bptt))
        return x, out, out


def get_text_classifier(arch: Callable, vocab_sz: int, n_class: int, seq_len: int = 72, config: dict | None = None,
                        drop_mult: float = 1.0, lin_ftrs: Sequence[int] | None = None,
                        ps: Sequence[float] | None = None, pad_idx: int = 1, max_len: int | None = 72 * 20,
                        y_range: tuple[float, float] | None = None) -> SequentialRNN:
    """Build `SequentialRNN(SentenceEncoder(seq_len, arch(...)), PoolingLinearClassifier(...))` for `n_class` outputs.

    The head has layers `[3 * hidden, *lin_ftrs (default [50]), n_class]` with dropouts `[output_p, *ps]`.
    """
    meta = _meta(arch, "get_text_classifier")
    config = _scaled_config(dict(meta["config_clas"] if config is None else config), drop_mult)
    for k in ("tie_weights", "out_bias"):
        config.pop(k, None)
    lin_ftrs = [50] if lin_ftrs is None else list(lin_ftrs)
    ps = [0.1] * len(lin_ftrs) if ps is None else list(ps)
    layers = [config[meta["hid_name"]] * 3, *lin_ftrs, n_class]
    ps = [config.pop("output_p", 0.4), *ps]
    init = config.pop("init", None)
    encoder = SentenceEncoder(seq_len, arch(vocab_sz, **config), pad_idx=pad_idx, max_len=max_len)
    model = SequentialRNN(encoder, PoolingLinearClassifier(layers, ps, bptt=seq_len, y_range=y_range))
    return model if init is None else model.apply(init)
