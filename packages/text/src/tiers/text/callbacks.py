"""Callbacks for recurrent models: reset the hidden state at the right times, and AWD-LSTM's activation penalties."""

from tiers.train import Callback

__all__ = ["ModelResetter", "RNNCallback", "RNNRegularizer", "rnn_cbs"]


def _reset(model: object) -> None:
    # A recurrent model resets its hidden state; a model without `reset` has none to reset.
    r = getattr(model, "reset", None)
    if callable(r):
        r()


class ModelResetter(Callback):
    """Reset the model's hidden state before training, before validation and after fitting, so no state leaks from
    one phase (or one text) into the next."""

    def before_train(self) -> None:
        """Reset before training."""
        _reset(self.learn.model)

    def before_validate(self) -> None:
        """Reset before validation."""
        _reset(self.learn.model)

    def after_fit(self) -> None:
        """Reset after fitting."""
        _reset(self.learn.model)


class RNNCallback(Callback):
    """Split a recurrent model's output `(pred, raw_out, out)` (see `LinearDecoder`): the loss and metrics see `pred`;
    `raw_out` and `out` (the last layer's outputs before and after dropout) are kept for `RNNRegularizer`."""

    def after_pred(self) -> None:
        """Keep `pred` for the loss; store `raw_out` and `out`."""
        pred = self.learn.pred
        self.raw_out = self.out = None
        if isinstance(pred, (tuple, list)) and len(pred) == 3:
            self.learn.pred, self.raw_out, self.out = (o[-1] if isinstance(o, (tuple, list)) else o for o in pred)


class RNNRegularizer(Callback):
    """AWD-LSTM's penalties on the loss in training: activation regularization `alpha * mean(out ** 2)` on the
    dropped-out outputs, and temporal activation regularization `beta * mean((h_t - h_{t-1}) ** 2)` on the raw ones."""

    order = RNNCallback.order + 1

    def __init__(self, alpha: float = 0.0, beta: float = 0.0):
        super().__init__()
        self.alpha, self.beta = alpha, beta

    def _rnn(self) -> RNNCallback | None:
        return next((cb for cb in self.learn.cbs if isinstance(cb, RNNCallback)), None)

    def after_loss(self) -> None:
        """Add the AR and TAR penalties to `loss_grad` (training only)."""
        if not self.learn.training or (not self.alpha and not self.beta):
            return
        rnn = self._rnn()
        if rnn is None or rnn.out is None or rnn.raw_out is None:  # (after_pred sets both or neither)
            return
        extra = 0.0
        if self.alpha:
            extra = extra + self.alpha * rnn.out.float().pow(2).mean()
        h = rnn.raw_out
        if self.beta and h.dim() == 3 and h.size(1) > 1:
            extra = extra + self.beta * (h[:, 1:] - h[:, :-1]).float().pow(2).mean()
        # A new tensor, not an in-place change: `loss` (for logging) shares storage with `loss_grad`.
        self.learn.loss_grad = self.learn.loss_grad + extra


def rnn_cbs(alpha: float = 0.0, beta: float = 0.0) -> list[Callback]:
    """The callbacks a recurrent model trains with: `[ModelResetter(), RNNCallback(), RNNRegularizer(alpha, beta)]`."""
    return [ModelResetter(), RNNCallback(), RNNRegularizer(alpha=alpha, beta=beta)]
