"""Mixed precision training: `MixedPrecision` callback and `learn.to_fp16()` / `to_bf16()` / `to_fp32()`.

The forward pass and the loss run under `torch.autocast` (fp16 or bf16); weights and optimizer
state stay fp32. fp16 has a narrow range, so the loss is multiplied by a dynamic scale before
backward (`torch.amp.GradScaler`): gradients are unscaled before the step, a step whose gradients
hold inf/nan is skipped and the scale halved; after a run of good steps the scale grows. bf16
has fp32's range and needs no scaling.

fp16 autocast needs a GPU: on a CPU model (where oneDNN has no fp16 kernel for some layers, e.g. the LSTM of
AWD_LSTM) `to_fp16()` warns once and trains in fp32, autocast and loss scaler off for that fit, as fastai's
CUDA-only autocast does in effect; `to_bf16()` is the mixed precision that works on CPU, and
`MixedPrecision('fp16', cpu_fp16=True)` forces fp16 autocast on CPU.

>>> learn = learn.to_bf16()          # doctest: +SKIP
>>> learn.fit(1)                     # doctest: +SKIP
"""

import warnings
from typing import Any

import torch

from tiers.train.callbacks.core import Callback
from tiers.train.events import CancelStepException

__all__ = ["MixedPrecision", "get_amp_dtype"]

_DTYPES = {"fp16": torch.float16, "float16": torch.float16, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}


def get_amp_dtype(amp_mode: str | torch.dtype) -> torch.dtype:
    """The torch dtype for `amp_mode` ('fp16'/'float16' or 'bf16'/'bfloat16', or the dtype itself)."""
    if isinstance(amp_mode, torch.dtype):
        if amp_mode in (torch.float16, torch.bfloat16):
            return amp_mode
    elif str(amp_mode).lower() in _DTYPES:
        return _DTYPES[str(amp_mode).lower()]
    raise ValueError(f"MixedPrecision: amp_mode={amp_mode!r} is not supported; use 'fp16' or 'bf16'")


class _StepShim:
    # GradScaler.step(opt) needs torch-style `param_groups` and a `step()`; our optimizer's step must
    # stay under the Learner's control (so other callbacks see before/after_step), so the scaler
    # steps this shim, which only records that the gradients were finite.
    def __init__(self) -> None:
        self.param_groups: list[dict] = [{"params": []}]
        self.stepped = False

    def step(self, *args: Any, **kwargs: Any) -> None:
        self.stepped = True


class MixedPrecision(Callback):
    """Train with autocast in `amp_mode` ('fp16' or 'bf16'), with dynamic loss scaling for fp16.

    `init_scale`, `growth_factor`, `backoff_factor`, `growth_interval` go to `torch.amp.GradScaler`.
    Steps with non-finite gradients are skipped (`skipped_steps` counts them). Gradients are unscaled
    in `before_step`, so callbacks ordered after this one (e.g. `GradientClip`) see true gradients.
    fp16 on a CPU model warns (once) and trains in fp32 for that fit unless `cpu_fp16=True`.
    """

    order = 10
    # class defaults too: a MixedPrecision pickled (exported) before these attributes existed still loads and runs
    cpu_fp16: bool = False
    _fit_on: bool = True
    _warned: bool = False

    def __init__(
        self, amp_mode: str | torch.dtype = "fp16", init_scale: float = 2.0**16, growth_factor: float = 2.0,
        backoff_factor: float = 0.5, growth_interval: int = 2000, enabled: bool = True, cpu_fp16: bool = False,
    ) -> None:
        self.dtype = get_amp_dtype(amp_mode)
        self.amp_mode = "fp16" if self.dtype == torch.float16 else "bf16"
        self.scaler_kwargs: dict[str, Any] = dict(
            init_scale=init_scale, growth_factor=growth_factor, backoff_factor=backoff_factor, growth_interval=growth_interval
        )
        self.enabled = enabled
        self.cpu_fp16 = cpu_fp16
        self._fit_on = enabled  # whether this fit runs under autocast (before_fit turns fp16 on a CPU model off)
        self._warned = False
        self.scaler: torch.amp.GradScaler | None = None
        self.skipped_steps = 0
        self._shim = _StepShim()
        self._ctx: Any = None
        self._pending_scaler_state: dict | None = None

    @property
    def use_scaler(self) -> bool:
        """Whether loss scaling is on (fp16 only)."""
        return self.enabled and self._fit_on and self.dtype == torch.float16

    def before_fit(self) -> None:
        """Pick the autocast device from the model and build the grad scaler (fp16); fp16 on a CPU model (without
        `cpu_fp16`) warns once and runs this fit in fp32."""
        self.device_type = self.learn._model_device().type
        self._fit_on = self.enabled
        if self.enabled and self.dtype == torch.float16 and self.device_type == "cpu" and not self.cpu_fp16:
            self._fit_on = False
            if not self._warned:
                self._warned = True
                warnings.warn(
                    f"MixedPrecision (to_fp16): fp16 autocast needs a GPU and the model is on the "
                    f"{self.device_type} device, where fp16 has no kernel for some layers (e.g. an LSTM); training "
                    "in fp32 (autocast and loss scaling off). Use to_bf16() for mixed precision on CPU, or move the "
                    "model to a GPU", UserWarning, stacklevel=2)
        if self.use_scaler and self.scaler is None:
            self.scaler = torch.amp.GradScaler(self.device_type, **self.scaler_kwargs)
            if self._pending_scaler_state is not None:
                self.scaler.load_state_dict(self._pending_scaler_state)
                self._pending_scaler_state = None

    def before_batch(self) -> None:
        """Enter autocast for the forward pass and the loss."""
        if not self._fit_on:
            return
        self._ctx = torch.autocast(self.device_type, dtype=self.dtype)
        self._ctx.__enter__()

    def after_pred(self) -> None:
        """Predictions back to fp32, so losses and metrics are computed at full precision."""
        pred = self.learn.pred
        if isinstance(pred, torch.Tensor) and pred.dtype in (torch.float16, torch.bfloat16):
            self.learn.pred = pred.float()

    def _exit(self) -> None:
        if self._ctx is not None:
            ctx, self._ctx = self._ctx, None
            ctx.__exit__(None, None, None)

    def after_loss(self) -> None:
        """Leave autocast: backward runs outside it."""
        self._exit()

    def after_cancel_batch(self) -> None:
        """Leave autocast when the batch was cancelled before the loss."""
        self._exit()

    def before_backward(self) -> None:
        """Scale the loss (fp16)."""
        if self.use_scaler and self.scaler is not None:
            self.learn.loss_grad = self.scaler.scale(self.learn.loss_grad)

    def before_step(self) -> None:
        """Unscale the gradients; skip the step (and lower the scale) when any is inf or nan."""
        if not self.use_scaler or self.scaler is None:
            return
        shim = self._shim
        shim.param_groups[0]["params"] = [p for p in self.learn.model.parameters() if p.grad is not None]
        shim.stepped = False
        self.scaler.step(shim)  # type: ignore[arg-type]  # duck-typed: step() reads param_groups and calls shim.step
        self.scaler.update()
        if not shim.stepped:
            self.skipped_steps += 1
            raise CancelStepException()

    def after_fit(self) -> None:
        """Make sure autocast is off after the fit, even after an error mid-batch."""
        self._exit()

    # ---- checkpoint state -------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Grad scaler state and skipped-step count (for checkpoints)."""
        return {"skipped_steps": self.skipped_steps, "scaler": None if self.scaler is None else self.scaler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Restore what `state_dict` returned."""
        self.skipped_steps = int(state.get("skipped_steps", 0))
        sc = state.get("scaler")
        if sc:
            if self.scaler is not None:
                self.scaler.load_state_dict(sc)
            else:
                self._pending_scaler_state = sc


def to_fp16(self: Any, **kwargs: Any) -> Any:
    """Train in mixed precision fp16 with dynamic loss scaling (replaces any `MixedPrecision`)."""
    self.remove_cb(MixedPrecision)
    return self.add_cb(MixedPrecision(amp_mode="fp16", **kwargs))


def to_bf16(self: Any, **kwargs: Any) -> Any:
    """Train in mixed precision bf16 (no loss scaling needed; works on CPU) (replaces any `MixedPrecision`)."""
    self.remove_cb(MixedPrecision)
    return self.add_cb(MixedPrecision(amp_mode="bf16", **kwargs))


def to_fp32(self: Any) -> Any:
    """Back to full precision: remove `MixedPrecision` and make sure the model is fp32."""
    self.remove_cb(MixedPrecision)
    self.model.float()
    return self
