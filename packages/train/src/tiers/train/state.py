"""The training loop's state: what a `Learner` holds while it runs (batch, predictions, loss, counters)."""

__all__ = ["LOOP_ATTRS"]

#: Learner attributes that `self.<name> = value` inside a callback writes to the learner.
LOOP_ATTRS = frozenset(
    "xb yb pred loss loss_grad dl iter n_iter epoch n_epoch training pct_train train_iter opt model "
    "loss_func".split()
)
