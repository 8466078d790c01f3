"""ONNX export of an AWD-LSTM text classifier (`TextLearner.export_onnx`): a stateless twin of the model.

`get_text_classifier`'s model cannot be traced as it is: `SentenceEncoder` reads a document `bptt` tokens at a time
in a Python loop, keeps the LSTM's hidden state on the module between chunks, and runs only the rows that have
started (a branch on the data); `AWD_LSTM` swaps its weight-dropped matrices in at each call. `OnnxTextClassifier`
computes the same function in one pass over the whole padded batch, with no state and no data-dependent branch, so
the exported graph takes any batch size and any sequence length:

* each row's leading padding (what `pad_input_chunk` puts before a text, in whole chunks) is rotated to the end, so
  its text starts at step 0 from a zero state, as `SentenceEncoder` starts a row at its first chunk of text; the
  padding after a text only changes outputs that the pooling ignores;
* every LSTM layer then runs over the whole sequence at once (`nn.LSTM`s sharing the classifier's parameters, the
  weight-dropped matrix being the raw one, as in evaluation);
* the pooling (`masked_concat_pool`) and the head are the classifier's own, the positions before the last `max_len`
  tokens (rounded to chunks, as `SentenceEncoder` keeps them) counted as padding.

The graph's input `x` is int64 token ids `(batch, seq_len)` padded with the vocabulary's pad id (1, `xxpad`), as the
text loaders build them (`learn.dls.test_dl(texts).one_batch()[0]`); its output is what `get_preds` returns (softmax
probabilities for a classifier, the raw values for a regression). Language models are not exported (text
generation feeds one token at a time with a hidden state: run them in PyTorch), nor bidirectional encoders.
"""

from typing import ClassVar, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tiers.text.awdlstm import AWD_LSTM, WeightDropout
from tiers.text.models import PoolingLinearClassifier, SentenceEncoder, masked_concat_pool

__all__ = ["OnnxTextClassifier", "onnx_text_classifier", "check_twin"]


_LSTM_PARAMS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


def _iofc(w: Tensor) -> Tensor:
    # PyTorch stacks an LSTM's gates as (input, forget, cell, output); ONNX as (input, output, forget, cell).
    h = w.shape[0] // 4
    return torch.cat([w[:h], w[3 * h:], w[h:2 * h], w[2 * h:3 * h]])  # slices, not chunk: no Split node to fold


class _OnnxLSTM(nn.Module):
    """One forward LSTM layer (batch first, zero initial state) over `rnn`'s parameters (the same Parameter objects,
    no copy; the hidden-to-hidden matrix is WeightDropout's raw one, what the layer uses in evaluation). In PyTorch it
    runs `nn.LSTM`; in an ONNX export it is ONNX's own LSTM operator, whose sequence length stays dynamic (the
    exporter's translation of `aten.lstm` fixes it to the sample's)."""

    def __init__(self, rnn: WeightDropout):
        super().__init__()
        inner = cast(nn.LSTM, rnn.module)
        self.lstm = nn.LSTM(inner.input_size, inner.hidden_size, 1, batch_first=True)
        for name in _LSTM_PARAMS:
            p = getattr(rnn, f"{name}_raw", None) if name in rnn.layer_names else getattr(inner, name, None)
            if not isinstance(p, nn.Parameter):
                raise TypeError(f"export_onnx: the encoder's LSTM has no parameter {name!r} to export (got "
                                f"{type(p).__name__}); was AWD_LSTM built with other weight names?")
            setattr(self.lstm, name, p)

    def forward(self, x: Tensor) -> Tensor:
        if not torch.onnx.is_in_onnx_export():
            return self.lstm(x)[0]
        h = self.lstm.hidden_size
        w_ih, w_hh, b_ih, b_hh = (cast(Tensor, getattr(self.lstm, n)) for n in _LSTM_PARAMS)  # set in __init__
        w, r, b = _iofc(w_ih)[None], _iofc(w_hh)[None], torch.cat([_iofc(b_ih), _iofc(b_hh)])[None]
        seq = x.transpose(0, 1)  # ONNX's LSTM reads (seq_len, batch, n)
        y = torch.onnx.ops.symbolic("LSTM", (seq, w, r, b), {"hidden_size": h}, dtype=x.dtype,
                                    shape=[seq.shape[0], 1, seq.shape[1], h], version=14)
        return y[:, 0].transpose(0, 1)  # (seq_len, 1 direction, batch, h) -> (batch, seq_len, h)


class OnnxTextClassifier(nn.Module):
    """`model` (a `get_text_classifier` AWD-LSTM classifier) computed statelessly in one pass, returning the head's
    output alone: the module `TextLearner.export_onnx` exports (module docstring: why and how it matches).
    `onnx_dynamic_axes` tells the exporter that the sequence axis (1) of the input is dynamic, like the batch axis."""

    onnx_dynamic_axes: ClassVar[dict[int, str]] = {1: "seq_len"}
    pos: Tensor  # buffer

    def __init__(self, model: nn.Module):
        super().__init__()
        enc, head = _parts(model)
        awd = cast(AWD_LSTM, enc.module)
        self.embedding = awd.encoder  # the same module: shares the weights
        self.lstms = nn.ModuleList(_OnnxLSTM(cast(WeightDropout, r)) for r in awd.rnns)
        self.head = head.layers
        self.pad_idx, self.bptt = int(enc.pad_idx), int(enc.bptt)
        self.max_len = None if enc.max_len is None else int(enc.max_len)

    def forward(self, x: Tensor) -> Tensor:
        mask = x == self.pad_idx
        pos = torch.arange(x.shape[1], device=x.device)
        # the sequence length as a tensor: the arithmetic below stays in the graph (dynamic length)
        sl = pos[-1:] + 1
        if self.max_len is not None:
            # SentenceEncoder keeps the outputs of the chunks that start within the last max_len tokens
            first_kept = torch.div(sl - self.max_len + self.bptt - 1, self.bptt, rounding_mode="floor") * self.bptt
            mask = mask | (pos < first_kept)[None]
        # Rotate each row so its text starts at step 0 (argmax: the first non-pad position; 0 for an all-pad row)
        start = (x != self.pad_idx).to(torch.int64).argmax(dim=1)
        idx = torch.remainder(pos[None] + start[:, None], sl)
        tokens, mask = x.gather(1, idx), mask.gather(1, idx)
        out = F.embedding(tokens, self.embedding.weight)
        for lstm in self.lstms:
            out = lstm(out)
        return self.head(masked_concat_pool(out, mask))


def _parts(model: nn.Module) -> tuple[SentenceEncoder, PoolingLinearClassifier]:
    kids = list(model.children())
    enc = kids[0] if kids else None
    if isinstance(enc, AWD_LSTM):
        raise TypeError("export_onnx: this is a language model (AWD_LSTM + LinearDecoder); text generation feeds one "
                        "token at a time through a hidden state and is not exported to ONNX. Export the classifier "
                        "(text_classifier_learner), or run the language model in PyTorch (learn.predict).")
    if len(kids) != 2 or not isinstance(enc, SentenceEncoder) or not isinstance(kids[1], PoolingLinearClassifier):
        raise TypeError(f"export_onnx: the model is a {type(model).__name__} of "
                        f"{[type(k).__name__ for k in kids]}, not get_text_classifier's SentenceEncoder + "
                        "PoolingLinearClassifier; a custom text model exports with tiers.train.io.onnx.export_onnx "
                        "if its forward is stateless and returns one tensor.")
    awd = enc.module
    if not isinstance(awd, AWD_LSTM):
        raise TypeError(f"export_onnx: the classifier's encoder is a {type(awd).__name__}; the stateless ONNX twin "
                        "knows AWD_LSTM only.")
    if awd.n_dir != 1:
        raise ValueError("export_onnx: a bidirectional AWD_LSTM (bidir=True) is not exported: SentenceEncoder "
                         "carries the backward direction's state from chunk to chunk, which one pass over the whole "
                         "text does not reproduce. Train a forward (or a backwards=True) classifier to export.")
    return enc, kids[1]


def onnx_text_classifier(model: nn.Module) -> OnnxTextClassifier:
    """The stateless export twin of the AWD-LSTM classifier `model` (sharing its parameters); a language model, a
    bidirectional encoder or another architecture raises an error saying why and what to do instead."""
    return OnnxTextClassifier(model)


def check_twin(twin: nn.Module, model: nn.Module, x: Tensor, atol: float = 1e-5) -> None:
    """Raise a `RuntimeError` unless `twin(x)` equals the head's output of `model(x)` (both in evaluation) within
    `atol`: the export must compute what the model computes."""
    x = x.as_subclass(Tensor) if type(x) is not Tensor else x
    p = next(model.parameters(), None)
    x = x.to(p.device) if p is not None else x
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            want = model(x)[0]
            got = twin(x)
    finally:
        model.train(was_training)
    diff = float((got - want).abs().max()) if got.shape == want.shape else float("inf")
    if not diff <= atol:
        raise RuntimeError(f"export_onnx: the stateless export of the classifier differs from the model by {diff:.3g} "
                           f"(> {atol}) on a batch of shape {tuple(x.shape)}; its padding is not the loaders' "
                           "(pad_input_chunk: whole chunks of xxpad before each text), or the model's forward was "
                           "changed. Nothing was written.")
