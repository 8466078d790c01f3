"""AWD-LSTM (Merity et al., 2017) in plain PyTorch: an LSTM stack regularised by dropout on embeddings, inputs,
hidden-to-hidden weights and between layers, that keeps its hidden state from one batch to the next.

Parameter names match fastai's, so a fastai state dict (WT103 weights, or a fastai encoder) loads as it is.

>>> m = AWD_LSTM(vocab_sz=100, emb_sz=8, n_hid=16, n_layers=2)
>>> m(torch.randint(0, 100, (4, 10))).shape
torch.Size([4, 10, 8])
"""

import warnings
from collections.abc import Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "dropout_mask", "RNNDropout", "WeightDropout", "EmbeddingDropout", "AWD_LSTM", "awd_lstm_lm_config",
    "awd_lstm_clas_config", "awd_lstm_lm_split", "awd_lstm_clas_split",
]


def dropout_mask(x: Tensor, sz: Sequence[int], p: float) -> Tensor:
    """A dropout mask of size `sz` (like `x`): zeros with probability `p`, the rest scaled by `1/(1-p)`.

    >>> dropout_mask(torch.ones(1), (2, 3), 0.).tolist()
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """
    return x.new_empty(*sz).bernoulli_(1 - p).div_(1 - p)


class RNNDropout(nn.Module):
    """Dropout with one mask per sequence, shared along the time axis (dim 1) of a `(bs, seq_len, n)` input."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        return x * dropout_mask(x.data, (x.size(0), 1, *x.shape[2:]), self.p)


def _do_nothing(*args, **kwargs) -> None:
    # A module-level function (not a lambda), so a wrapped LSTM still pickles (Learner.export).
    return None


class WeightDropout(nn.Module):
    """Wrap `module` and apply dropout with probability `weight_p` to its `layer_names` weights at each forward
    (DropConnect on an LSTM's hidden-to-hidden matrix in AWD-LSTM). The raw weights live here as `<name>_raw`."""

    def __init__(self, module: nn.Module, weight_p: float, layer_names: str | Sequence[str] = "weight_hh_l0"):
        super().__init__()
        self.module, self.weight_p = module, weight_p
        self.layer_names = [layer_names] if isinstance(layer_names, str) else list(layer_names)
        for name in self.layer_names:
            w = getattr(self.module, name)
            delattr(self.module, name)
            self.register_parameter(f"{name}_raw", nn.Parameter(w.data))
            # A plain tensor in the module's slot, replaced by a freshly dropped-out copy at each forward.
            setattr(self.module, name, w.data.clone())
        if isinstance(self.module, nn.RNNBase):
            # Flattening would try to re-register our plain tensors as parameters.
            self.module.flatten_parameters = _do_nothing  # type: ignore[method-assign]  # on this instance only

    def _setweights(self) -> None:
        for name in self.layer_names:
            raw = getattr(self, f"{name}_raw")
            w = F.dropout(raw, p=self.weight_p, training=True) if self.training and self.weight_p else raw * 1.0
            setattr(self.module, name, w)

    def forward(self, *args: Any) -> Any:
        self._setweights()
        with warnings.catch_warnings():
            # cuDNN warns that the dropped-out weights are not one contiguous chunk; that is expected here.
            warnings.filterwarnings("ignore", message=".*not part of single contiguous chunk.*")
            return self.module(*args)

    def reset(self) -> None:
        """Put plain copies of the raw weights back in the wrapped module."""
        for name in self.layer_names:
            setattr(self.module, name, getattr(self, f"{name}_raw").data.clone())
        reset = getattr(self.module, "reset", None)  # torch types any attribute of a Module as Tensor | Module
        if reset is not None:
            reset()

    def __getstate__(self) -> dict:
        # The module holds the last forward's weights, which are attached to the autograd graph and cannot be
        # pickled or deep-copied; swap in plain copies first (the next forward replaces them anyway).
        self.reset()
        return self.__dict__.copy()


class EmbeddingDropout(nn.Module):
    """Wrap the embedding `emb` and drop whole rows (words) of its weight with probability `embed_p` in training."""

    def __init__(self, emb: nn.Embedding, embed_p: float):
        super().__init__()
        self.emb, self.embed_p = emb, embed_p

    def forward(self, words: Tensor, scale: float | None = None) -> Tensor:
        w = self.emb.weight
        if self.training and self.embed_p != 0:
            w = w * dropout_mask(w.data, (w.size(0), 1), self.embed_p)
        if scale is not None:
            w = w * scale
        e = self.emb
        return F.embedding(words, w, e.padding_idx, e.max_norm, e.norm_type, e.scale_grad_by_freq, e.sparse)


class AWD_LSTM(nn.Module):
    """The AWD-LSTM encoder: embedding (with `embed_p` word dropout and `input_p` dropout), `n_layers` weight-dropped
    LSTMs (`weight_p`) with `hidden_p` dropout between them. Hidden sizes are `n_hid`, except the last layer which
    outputs `emb_sz` (so a decoder can tie its weights to the embedding).

    The hidden state carries over between calls (for language modelling on a continuous stream); `reset()` zeroes it.
    Input `(bs, seq_len)` token ids; output `(bs, seq_len, emb_sz)`.
    """

    initrange = 0.1
    hidden: list[tuple[Tensor, Tensor]]  # (h, c) of each layer, set by reset()

    def __init__(self, vocab_sz: int, emb_sz: int, n_hid: int, n_layers: int, pad_token: int = 1,
                 hidden_p: float = 0.2, input_p: float = 0.6, embed_p: float = 0.1, weight_p: float = 0.5,
                 bidir: bool = False):
        super().__init__()
        for name, v in [("vocab_sz", vocab_sz), ("emb_sz", emb_sz), ("n_hid", n_hid), ("n_layers", n_layers)]:
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"AWD_LSTM: {name}={v!r} must be a positive int.")
        self.bs, self.emb_sz, self.n_hid, self.n_layers, self.pad_token = 1, emb_sz, n_hid, n_layers, pad_token
        self.n_dir = 2 if bidir else 1
        if bidir and (emb_sz % 2 or n_hid % 2):
            raise ValueError(f"AWD_LSTM: bidir=True needs even emb_sz and n_hid, got {emb_sz} and {n_hid}.")
        self.encoder = nn.Embedding(vocab_sz, emb_sz, padding_idx=pad_token)
        self.encoder_dp = EmbeddingDropout(self.encoder, embed_p)
        self.rnns = nn.ModuleList([
            self._one_rnn(emb_sz if i == 0 else n_hid, (n_hid if i != n_layers - 1 else emb_sz) // self.n_dir,
                          bidir, weight_p)
            for i in range(n_layers)])
        self.encoder.weight.data.uniform_(-self.initrange, self.initrange)
        self.input_dp = RNNDropout(input_p)
        self.hidden_dps = nn.ModuleList([RNNDropout(hidden_p) for _ in range(n_layers)])
        self.reset()

    @staticmethod
    def _one_rnn(n_in: int, n_out: int, bidir: bool, weight_p: float) -> WeightDropout:
        rnn = nn.LSTM(n_in, n_out, 1, batch_first=True, bidirectional=bidir)
        return WeightDropout(rnn, weight_p, ["weight_hh_l0", "weight_hh_l0_reverse"] if bidir else "weight_hh_l0")

    def _one_hidden(self, layer: int) -> Tensor:
        nh = (self.n_hid if layer != self.n_layers - 1 else self.emb_sz) // self.n_dir
        return self.encoder.weight.new_zeros(self.n_dir, self.bs, nh)

    def forward(self, inp: Tensor, from_embeds: bool = False) -> Tensor:
        bs = inp.shape[0]
        if bs != self.bs:
            self._change_hidden(bs)
        output = self.input_dp(inp if from_embeds else self.encoder_dp(inp))
        new_hidden = []
        for i, (rnn, hid_dp) in enumerate(zip(self.rnns, self.hidden_dps)):
            output, new_h = rnn(output, self.hidden[i])
            new_hidden.append(new_h)
            if i != self.n_layers - 1:
                output = hid_dp(output)
        # Truncated backprop through time: keep the values, cut the graph.
        self.hidden = [(h.detach(), c.detach()) for h, c in new_hidden]
        return output

    def _change_hidden(self, bs: int) -> None:
        """Resize the carried hidden state to `bs` rows: drop the last rows, or append zero rows."""
        def fit(h: Tensor) -> Tensor:
            if bs < self.bs:
                return h[:, :bs]
            return torch.cat([h, h.new_zeros(h.size(0), bs - self.bs, h.size(2))], dim=1)

        self.hidden = [(fit(h), fit(c)) for h, c in self.hidden]
        self.bs = bs

    def reset(self) -> None:
        """Zero the hidden state (call between independent sequences)."""
        for r in self.rnns:
            cast(WeightDropout, r).reset()  # built by _one_rnn
        self.hidden = [(self._one_hidden(i), self._one_hidden(i)) for i in range(self.n_layers)]


awd_lstm_lm_config = dict(emb_sz=400, n_hid=1152, n_layers=3, pad_token=1, bidir=False, output_p=0.1,
                          hidden_p=0.15, input_p=0.25, embed_p=0.02, weight_p=0.2, tie_weights=True, out_bias=True)
awd_lstm_clas_config = dict(emb_sz=400, n_hid=1152, n_layers=3, pad_token=1, bidir=False, output_p=0.4,
                            hidden_p=0.3, input_p=0.4, embed_p=0.05, weight_p=0.5)


def _params(*ms: nn.Module) -> list[nn.Parameter]:
    seen, out = set(), []
    for m in ms:
        for p in m.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                out.append(p)
    return out


def awd_lstm_lm_split(model: nn.Module) -> list[list[nn.Parameter]]:
    """Parameter groups of an AWD-LSTM language model for discriminative learning rates: one per LSTM layer, then
    the embedding with the (tied) decoder."""
    seq = cast(nn.Sequential, model)  # get_language_model's SequentialRNN(AWD_LSTM, LinearDecoder)
    enc = cast(AWD_LSTM, seq[0])
    groups = [_params(rnn, dp) for rnn, dp in zip(enc.rnns, enc.hidden_dps)]
    return groups + [_params(enc.encoder, enc.encoder_dp, seq[1])]


def awd_lstm_clas_split(model: nn.Module) -> list[list[nn.Parameter]]:
    """Parameter groups of an AWD-LSTM classifier: the embedding, one per LSTM layer, then the head; so `freeze_to(-1)`
    trains the head only and `freeze_to(-2)` adds the last LSTM layer (gradual unfreezing)."""
    seq = cast(nn.Sequential, model)  # get_text_classifier's SequentialRNN(SentenceEncoder(AWD_LSTM), head)
    enc = cast(AWD_LSTM, seq[0].module)
    groups = [_params(enc.encoder, enc.encoder_dp)]
    groups += [_params(rnn, dp) for rnn, dp in zip(enc.rnns, enc.hidden_dps)]
    return groups + [_params(seq[1])]
