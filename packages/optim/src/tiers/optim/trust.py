"""Layer-wise trust ratios: LARS/LARC (You et al. 2017) and LAMB (You et al. 2019).

Both scale each update by a ratio of norms. The `level` hyper-parameter chooses what a norm covers:
`'layer'` (each parameter tensor, the papers' choice), `'activation'` (each slice along dim 0, i.e. one
output unit of a layer) or `'model'` (all parameters of every group whose `level` is `'model'`). Model-level
norms need every parameter at once, so they exist only on the group path (`Optimizer(..., foreach=True)`).
"""

from typing import Any, cast

import torch

from .optimizer import ParamBatch
from .steppers import _adam_states, _hyper

__all__ = ["LEVELS", "lamb_step", "larc_layer", "larc_layer_lr", "larc_step"]

LEVELS = ("layer", "activation", "model")

# LAMB's trust ratio is clipped, so a tiny update norm cannot blow the step up (fastai uses the same bound).
_MAX_TRUST = 10.0


def _check_level(level: str, who: str) -> str:
    if level not in LEVELS:
        raise ValueError(f"{who}: level={level!r} is not one of {LEVELS}")
    return level


def _per_param_level(level: str, who: str) -> str:
    if _check_level(level, who) == "model":
        raise ValueError(
            f"{who}: level='model' needs the norms of all parameters at once, which the per-parameter path "
            f"cannot see; create the optimizer with foreach=True"
        )
    return level


def _norm(t: torch.Tensor, level: str) -> torch.Tensor:
    if level == "layer" or t.ndim == 0:
        return torch.linalg.vector_norm(t)
    # One norm per output unit, shaped (out, 1, ..., 1) to broadcast against `t`.
    flat = torch.linalg.vector_norm(t.reshape(t.shape[0], -1), dim=1)
    return flat.reshape(t.shape[0], *([1] * (t.ndim - 1)))


def _pooled_norm(ts: list[torch.Tensor]) -> torch.Tensor:
    # At least float32, so half-precision groups don't overflow; float64 if any tensor is.
    dtype = torch.float64 if any(t.dtype == torch.float64 for t in ts) else torch.float32
    norms = [torch.linalg.vector_norm(t, dtype=dtype) for t in ts]
    return torch.linalg.vector_norm(torch.stack([n.to(norms[0].device) for n in norms]))


def _larc_lr(
    p_norm: torch.Tensor,
    g_norm: torch.Tensor,
    lr: float,
    trust_coeff: float,
    wd: float,
    eps: float,
    clip: bool,
) -> torch.Tensor:
    local = lr * trust_coeff * p_norm / (g_norm + wd * p_norm + eps)
    # A zero weight or gradient norm says nothing about scale: fall back to the global rate (as NVIDIA's LARC).
    local = torch.where((p_norm > 0) & (g_norm > 0), local, torch.full_like(local, lr))
    return local.clamp(max=lr) if clip else local


def larc_layer_lr(
    p: torch.Tensor,
    lr: float,
    trust_coeff: float,
    wd: float,
    eps: float,
    clip: bool = True,
    level: str = "layer",
    **kwargs: Any,
) -> dict[str, torch.Tensor]:
    """Stat `local_lr`: LARS's rate `lr * trust_coeff * |p| / (|g| + wd*|p| + eps)`; `clip` caps it at `lr` (LARC).

    Computed from the gradient before any weight decay is applied, so put it first in the cbs.
    """
    level = _per_param_level(level, "larc_layer_lr")
    assert p.grad is not None  # the optimizer steps only parameters that have a gradient
    return {"local_lr": _larc_lr(_norm(p, level), _norm(p.grad, level), lr, trust_coeff, wd, eps, clip)}


def _larc_layer_lr_foreach(batches: list[ParamBatch]) -> None:
    who = "larc_layer_lr"
    pooled = [b for b in batches if _check_level(b.hypers.get("level", "layer"), who) == "model"]
    if pooled:
        model_p = _pooled_norm([p for b in pooled for p in b.params])
        model_g = _pooled_norm(cast(list[torch.Tensor], [p.grad for b in pooled for p in b.params]))
    for b in batches:
        lr, tc = _hyper(b, "lr", who), _hyper(b, "trust_coeff", who)
        wd, eps = _hyper(b, "wd", who), _hyper(b, "eps", who)
        level, clip = b.hypers.get("level", "layer"), b.hypers.get("clip", True)
        for p, st in zip(b.params, b.states):
            if level == "model":
                st["local_lr"] = _larc_lr(model_p, model_g, lr, tc, wd, eps, clip)
            else:
                assert p.grad is not None  # the optimizer steps only parameters that have a gradient
                st["local_lr"] = _larc_lr(_norm(p, level), _norm(p.grad, level), lr, tc, wd, eps, clip)


larc_layer_lr.defaults = dict(trust_coeff=0.02, wd=0.0, eps=1e-8)  # type: ignore[attr-defined]  # stepper metadata lives on the function
larc_layer_lr.foreach = _larc_layer_lr_foreach  # type: ignore[attr-defined]  # stepper metadata lives on the function
larc_layer_lr.needs_all_params = lambda hypers: hypers.get("level", "layer") == "model"  # type: ignore[attr-defined]  # stepper metadata lives on the function

larc_layer = larc_layer_lr


def larc_step(
    p: torch.Tensor,
    local_lr: torch.Tensor | float,
    mom: float = 0.0,
    momentum_buffer: torch.Tensor | None = None,
    **kwargs: Any,
) -> dict[str, torch.Tensor] | None:
    """LARS update (You et al. 2017, Algorithm 1): `buf = mom*buf + local_lr*grad; p -= buf`.

    The buffer accumulates the trust-scaled steps, as in the paper, so no `average_grad` is needed; with L2
    weight decay (`l2_reg` before it) the gradient already holds `wd*p`.
    """
    assert p.grad is not None  # the optimizer steps only parameters that have a gradient
    scaled = p.grad * local_lr
    if not mom:
        p.sub_(scaled)
        return None
    if momentum_buffer is None:
        momentum_buffer = torch.zeros_like(p, memory_format=torch.preserve_format)
    momentum_buffer.mul_(mom).add_(scaled)
    p.sub_(momentum_buffer)
    return {"momentum_buffer": momentum_buffer}


def _trust(w_norm: torch.Tensor, u_norm: torch.Tensor) -> torch.Tensor:
    ratio = torch.where((w_norm > 0) & (u_norm > 0), w_norm / u_norm, torch.ones_like(w_norm))
    return ratio.clamp(max=_MAX_TRUST)


def _lamb_update(
    p: torch.Tensor,
    grad_avg: torch.Tensor,
    sqr_avg: torch.Tensor,
    step: int,
    mom: float,
    sqr_mom: float,
    eps: float,
    wd: float,
) -> torch.Tensor:
    bc1, bc2 = 1 - mom**step, 1 - sqr_mom**step
    update = grad_avg.div(bc1).div_(sqr_avg.div(bc2).sqrt_().add_(eps))
    if wd != 0:
        update.add_(p, alpha=wd)
    return update


def _lamb_wd(st: dict[str, Any], h: dict[str, Any]) -> float:
    do_wd = h["do_wd"] if "do_wd" in h else st.get("do_wd", True)
    return h.get("wd", 0.0) if (do_wd and h.get("decouple_wd", True)) else 0.0


def lamb_step(
    p: torch.Tensor,
    lr: float,
    mom: float,
    step: int,
    sqr_mom: float,
    grad_avg: torch.Tensor,
    sqr_avg: torch.Tensor,
    eps: float,
    wd: float = 0.0,
    do_wd: bool = True,
    decouple_wd: bool = True,
    level: str = "layer",
    **kwargs: Any,
) -> None:
    """LAMB (You et al. 2019, Algorithm 2): `u = m_hat/(sqrt(v_hat)+eps) + wd*p; p -= lr * |p|/|u| * u`.

    The trust ratio `|p|/|u|` is 1 when either norm is zero and is clipped at 10. With `decouple_wd=False`
    the decay is left to an `l2_reg` earlier in the cbs.
    """
    level = _per_param_level(level, "lamb_step")
    wd = _lamb_wd({"do_wd": do_wd}, {"wd": wd, "decouple_wd": decouple_wd})
    update = _lamb_update(p, grad_avg, sqr_avg, step, mom, sqr_mom, eps, wd)
    p.addcmul_(update, _trust(_norm(p, level), _norm(update, level)), value=-lr)


def _lamb_step_foreach(batches: list[ParamBatch]) -> None:
    who = "lamb_step"
    pooled: list[tuple[torch.Tensor, torch.Tensor, float]] = []
    for b in batches:
        h = b.hypers
        lr, mom, sqr_mom, eps = (_hyper(b, k, who) for k in ("lr", "mom", "sqr_mom", "eps"))
        level = _check_level(h.get("level", "layer"), who)
        steps, avgs, sqrs = _adam_states(b, who)
        for p, st, s, avg, sqr in zip(b.params, b.states, steps, avgs, sqrs):
            update = _lamb_update(p, avg, sqr, s, mom, sqr_mom, eps, _lamb_wd(st, h))
            if level == "model":
                pooled.append((p, update, lr))
            else:
                p.addcmul_(update, _trust(_norm(p, level), _norm(update, level)), value=-lr)
    if pooled:
        # Both norms are taken before any model-level parameter moves.
        trust = _trust(_pooled_norm([p for p, _, _ in pooled]), _pooled_norm([u for _, u, _ in pooled]))
        for p, update, lr in pooled:
            p.addcmul_(update, trust.to(p.device), value=-lr)


lamb_step.foreach = _lamb_step_foreach  # type: ignore[attr-defined]  # stepper metadata lives on the function
lamb_step.needs_all_params = lambda hypers: hypers.get("level", "layer") == "model"  # type: ignore[attr-defined]  # stepper metadata lives on the function
