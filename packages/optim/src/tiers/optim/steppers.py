"""Stats and steppers: the building blocks an `Optimizer` composes (SGD, momentum, RMSProp, Adam, RAdam, QHAdam).

Each function updates one parameter `p` (stats return the state they compute, steppers change `p`), and most
carry a `.foreach` twin doing the same over whole groups with `torch._foreach_*`: the twin issues the same
kernels in the same order, so both paths give bit-identical results. Averages start at zero, so
`average_grad` without dampening matches torch's momentum buffer and with dampening Adam's first moment.
"""

import math
from typing import Any, cast

import torch
import torch.nn.functional as F

from .optimizer import ParamBatch

__all__ = [
    "adam_step",
    "average_grad",
    "average_sqr_grad",
    "debias",
    "l2_reg",
    "momentum_step",
    "qhadam_step",
    "radam_step",
    "rms_prop_step",
    "sgd_step",
    "step_stat",
    "weight_decay",
]


def _hyper(b: ParamBatch, k: str, who: str) -> Any:
    try:
        return b.hypers[k]
    except KeyError:
        raise KeyError(
            f"{who} needs the hyper-parameter {k!r}, which this optimizer's groups lack; "
            f"pass it when creating the optimizer ({k}=...)"
        ) from None


def _state(b: ParamBatch, k: str, who: str, before: str) -> list[Any]:
    try:
        return [st[k] for st in b.states]
    except KeyError:
        raise KeyError(
            f"{who} needs the state {k!r}: put {before} before it in the optimizer's cbs"
        ) from None


def _adam_states(b: ParamBatch, who: str) -> tuple[list[Any], list[Any], list[Any]]:
    # The Adam family's step count and two averages, in the order their missing-state errors are checked.
    return (_state(b, "step", who, "step_stat"), _state(b, "grad_avg", who, "average_grad"),
            _state(b, "sqr_avg", who, "average_sqr_grad"))


def _flag(st: dict[str, Any], hypers: dict[str, Any], k: str) -> bool:
    # Same precedence as the per-parameter call `cb(p, **{**state, **hypers})`: hypers win.
    return bool(hypers[k] if k in hypers else st.get(k, True))


def _zeros(p: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(p, memory_format=torch.preserve_format)


def _buffers(b: ParamBatch, k: str) -> list[torch.Tensor]:
    out = []
    for p, st in zip(b.params, b.states):
        if st.get(k) is None:
            st[k] = _zeros(p)
        out.append(st[k])
    return out


def _grads(b: ParamBatch) -> list[torch.Tensor]:
    return cast(list[torch.Tensor], [p.grad for p in b.params])  # parameters being stepped have a gradient


def debias(mom: float, damp: float, step: int) -> float:
    """The sum of the weights an average with factor `mom` and dampening `damp` has after `step` steps.

    Dividing by it removes the bias towards zero of an average started at zero: with `damp = 1 - mom` it is
    Adam's `1 - mom**step`.
    """
    return damp * (1 - mom**step) / (1 - mom)


def weight_decay(p: torch.Tensor, lr: float, wd: float, do_wd: bool = True, **kwargs: Any) -> None:
    """Decoupled weight decay (AdamW, Loshchilov and Hutter): `p *= 1 - lr*wd`, unless `do_wd` is False."""
    if do_wd and wd != 0:
        p.mul_(1 - lr * wd)


def _weight_decay_foreach(batches: list[ParamBatch]) -> None:
    for b in batches:
        wd, lr = _hyper(b, "wd", "weight_decay"), _hyper(b, "lr", "weight_decay")
        ps = [p for p, st in zip(b.params, b.states) if _flag(st, b.hypers, "do_wd")]
        if wd != 0 and ps:
            torch._foreach_mul_(ps, 1 - lr * wd)


weight_decay.defaults = dict(wd=0.0)  # type: ignore[attr-defined]  # stepper metadata lives on the function
weight_decay.foreach = _weight_decay_foreach  # type: ignore[attr-defined]  # stepper metadata lives on the function


def l2_reg(p: torch.Tensor, lr: float, wd: float, do_wd: bool = True, **kwargs: Any) -> None:
    """L2 regularization: add `wd * p` to the gradient (in place), unless `do_wd` is False."""
    assert p.grad is not None  # the optimizer steps only parameters that have a gradient
    if do_wd and wd != 0:
        p.grad.add_(p, alpha=wd)


def _l2_reg_foreach(batches: list[ParamBatch]) -> None:
    for b in batches:
        wd = _hyper(b, "wd", "l2_reg")
        ps = [p for p, st in zip(b.params, b.states) if _flag(st, b.hypers, "do_wd")]
        if wd != 0 and ps:
            torch._foreach_add_(cast(list[torch.Tensor], [p.grad for p in ps]), ps, alpha=wd)


l2_reg.defaults = dict(wd=0.0)  # type: ignore[attr-defined]  # stepper metadata lives on the function
l2_reg.foreach = _l2_reg_foreach  # type: ignore[attr-defined]  # stepper metadata lives on the function


def average_grad(
    p: torch.Tensor, mom: float, dampening: bool = False, grad_avg: torch.Tensor | None = None, **kwargs: Any
) -> dict[str, torch.Tensor]:
    """Stat `grad_avg`: `mom*grad_avg + grad`, or with `dampening` `mom*grad_avg + (1-mom)*grad`."""
    assert p.grad is not None  # the optimizer steps only parameters that have a gradient
    if grad_avg is None:
        grad_avg = _zeros(p)
    if dampening:
        grad_avg.lerp_(p.grad, 1 - mom)
    else:
        grad_avg.mul_(mom).add_(p.grad)
    return {"grad_avg": grad_avg}


def _average_grad_foreach(batches: list[ParamBatch]) -> None:
    for b in batches:
        mom = _hyper(b, "mom", "average_grad")
        avgs, grads = _buffers(b, "grad_avg"), _grads(b)
        if b.hypers.get("dampening", False):
            torch._foreach_lerp_(avgs, grads, 1 - mom)
        else:
            torch._foreach_mul_(avgs, mom)
            torch._foreach_add_(avgs, grads)


average_grad.defaults = dict(mom=0.9)  # type: ignore[attr-defined]  # stepper metadata lives on the function
average_grad.foreach = _average_grad_foreach  # type: ignore[attr-defined]  # stepper metadata lives on the function


def average_sqr_grad(
    p: torch.Tensor,
    sqr_mom: float,
    dampening: bool = True,
    sqr_avg: torch.Tensor | None = None,
    **kwargs: Any,
) -> dict[str, torch.Tensor]:
    """Stat `sqr_avg`: `sqr_mom*sqr_avg + (1-sqr_mom)*grad**2` (without `dampening`, `+ grad**2`)."""
    if sqr_avg is None:
        sqr_avg = _zeros(p)
    assert p.grad is not None  # the optimizer steps only parameters that have a gradient
    sqr_avg.mul_(sqr_mom).addcmul_(p.grad, p.grad, value=1 - sqr_mom if dampening else 1.0)
    return {"sqr_avg": sqr_avg}


def _average_sqr_grad_foreach(batches: list[ParamBatch]) -> None:
    for b in batches:
        sqr_mom = _hyper(b, "sqr_mom", "average_sqr_grad")
        sqrs, grads = _buffers(b, "sqr_avg"), _grads(b)
        torch._foreach_mul_(sqrs, sqr_mom)
        value = 1 - sqr_mom if b.hypers.get("dampening", True) else 1.0
        torch._foreach_addcmul_(sqrs, grads, grads, value=value)


average_sqr_grad.defaults = dict(sqr_mom=0.99)  # type: ignore[attr-defined]  # stepper metadata lives on the function
average_sqr_grad.foreach = _average_sqr_grad_foreach  # type: ignore[attr-defined]  # stepper metadata lives on the function


def step_stat(p: torch.Tensor, step: int = 0, **kwargs: Any) -> dict[str, int]:
    """Stat `step`: how many updates this parameter has had (Adam's bias correction needs it)."""
    return {"step": step + 1}


def _step_stat_foreach(batches: list[ParamBatch]) -> None:
    for b in batches:
        for st in b.states:
            st["step"] = st.get("step", 0) + 1


step_stat.foreach = _step_stat_foreach  # type: ignore[attr-defined]  # stepper metadata lives on the function


def sgd_step(p: torch.Tensor, lr: float, **kwargs: Any) -> None:
    """Plain SGD: `p -= lr * grad`."""
    assert p.grad is not None  # the optimizer steps only parameters that have a gradient
    p.add_(p.grad, alpha=-lr)


def _sgd_step_foreach(batches: list[ParamBatch]) -> None:
    for b in batches:
        torch._foreach_add_(b.params, _grads(b), alpha=-_hyper(b, "lr", "sgd_step"))


sgd_step.foreach = _sgd_step_foreach  # type: ignore[attr-defined]  # stepper metadata lives on the function


def momentum_step(p: torch.Tensor, lr: float, grad_avg: torch.Tensor, **kwargs: Any) -> None:
    """SGD with momentum: `p -= lr * grad_avg` (needs `average_grad`)."""
    p.add_(grad_avg, alpha=-lr)


def _momentum_step_foreach(batches: list[ParamBatch]) -> None:
    for b in batches:
        avgs = _state(b, "grad_avg", "momentum_step", "average_grad")
        torch._foreach_add_(b.params, avgs, alpha=-_hyper(b, "lr", "momentum_step"))


momentum_step.foreach = _momentum_step_foreach  # type: ignore[attr-defined]  # stepper metadata lives on the function


def rms_prop_step(
    p: torch.Tensor,
    lr: float,
    sqr_avg: torch.Tensor,
    eps: float,
    grad_avg: torch.Tensor | None = None,
    **kwargs: Any,
) -> None:
    """RMSProp: `p -= lr * g / (sqrt(sqr_avg) + eps)`, with `g` the gradient or, if present, `grad_avg`."""
    denom = sqr_avg.sqrt().add_(eps)
    assert p.grad is not None  # the optimizer steps only parameters that have a gradient
    p.addcdiv_(p.grad if grad_avg is None else grad_avg, denom, value=-lr)


def _rms_prop_step_foreach(batches: list[ParamBatch]) -> None:
    for b in batches:
        sqrs = _state(b, "sqr_avg", "rms_prop_step", "average_sqr_grad")
        nums = cast(list[torch.Tensor], [p.grad if st.get("grad_avg") is None else st["grad_avg"]
                                         for p, st in zip(b.params, b.states)])
        denoms = torch._foreach_sqrt(sqrs)
        torch._foreach_add_(denoms, _hyper(b, "eps", "rms_prop_step"))
        torch._foreach_addcdiv_(b.params, nums, denoms, value=-_hyper(b, "lr", "rms_prop_step"))


rms_prop_step.defaults = dict(eps=1e-8)  # type: ignore[attr-defined]  # stepper metadata lives on the function
rms_prop_step.foreach = _rms_prop_step_foreach  # type: ignore[attr-defined]  # stepper metadata lives on the function


def adam_step(
    p: torch.Tensor,
    lr: float,
    mom: float,
    step: int,
    sqr_mom: float,
    grad_avg: torch.Tensor,
    sqr_avg: torch.Tensor,
    eps: float,
    **kwargs: Any,
) -> None:
    """Adam (Kingma and Ba): `p -= lr * m_hat / (sqrt(v_hat) + eps)` from dampened averages and `step`."""
    bc1, bc2 = 1 - mom**step, 1 - sqr_mom**step
    denom = sqr_avg.sqrt().div_(math.sqrt(bc2)).add_(eps)
    p.addcdiv_(grad_avg, denom, value=-lr / bc1)


def _adam_step_foreach(batches: list[ParamBatch]) -> None:
    for b in batches:
        who = "adam_step"
        lr, mom, sqr_mom = _hyper(b, "lr", who), _hyper(b, "mom", who), _hyper(b, "sqr_mom", who)
        steps, avgs, sqrs = _adam_states(b, who)
        denoms = torch._foreach_sqrt(sqrs)
        torch._foreach_div_(denoms, [math.sqrt(1 - sqr_mom**s) for s in steps])
        torch._foreach_add_(denoms, _hyper(b, "eps", who))
        torch._foreach_addcdiv_(b.params, avgs, denoms, [-lr / (1 - mom**s) for s in steps])


adam_step.foreach = _adam_step_foreach  # type: ignore[attr-defined]  # stepper metadata lives on the function


def _radam_terms(mom: float, sqr_mom: float, step: int) -> tuple[float, float, float | None]:
    bc1, bc2 = 1 - mom**step, 1 - sqr_mom**step
    r_inf = 2 / (1 - sqr_mom) - 1
    r = r_inf - 2 * step * sqr_mom**step / bc2
    # The variance of the adaptive term is only tractable once r > 5 (Liu et al. 2020, section 5).
    rect = math.sqrt((r - 4) * (r - 2) * r_inf / ((r_inf - 4) * (r_inf - 2) * r)) if r > 5 else None
    return bc1, bc2, rect


def radam_step(
    p: torch.Tensor,
    lr: float,
    mom: float,
    step: int,
    sqr_mom: float,
    grad_avg: torch.Tensor,
    sqr_avg: torch.Tensor,
    eps: float,
    beta: float = 0.0,
    **kwargs: Any,
) -> None:
    """RAdam (Liu et al. 2020): Adam with its adaptive term rectified, plain momentum SGD in the first steps.

    `eps` is added to `sqrt(sqr_avg)` before debiasing, as in the paper's code and `torch.optim.RAdam`. A
    non-zero `beta` replaces the denominator by `softplus(sqrt(v_hat) + eps, beta)` (SAdam).
    """
    bc1, bc2, rect = _radam_terms(mom, sqr_mom, step)
    if rect is None:
        p.add_(grad_avg, alpha=-lr / bc1)
    elif beta:
        denom = F.softplus(sqr_avg.div(bc2).sqrt_().add_(eps), beta)
        p.addcdiv_(grad_avg, denom, value=-lr * rect / bc1)
    else:
        denom = sqr_avg.sqrt().add_(eps)
        p.addcdiv_(grad_avg, denom, value=-lr * rect * math.sqrt(bc2) / bc1)


def _radam_step_foreach(batches: list[ParamBatch]) -> None:
    for b in batches:
        h, who = b.hypers, "radam_step"
        lr, mom, sqr_mom = _hyper(b, "lr", who), _hyper(b, "mom", who), _hyper(b, "sqr_mom", who)
        steps, avgs, sqrs = _adam_states(b, who)
        eps, beta = _hyper(b, "eps", who), h.get("beta", 0.0)
        rect_p, rect_avg, rect_sqr, values = [], [], [], []
        for p, s, avg, sqr in zip(b.params, steps, avgs, sqrs):
            bc1, bc2, rect = _radam_terms(mom, sqr_mom, s)
            if rect is None or beta:
                radam_step(p, lr, mom, s, sqr_mom, avg, sqr, eps, beta)
            else:
                rect_p.append(p)
                rect_avg.append(avg)
                rect_sqr.append(sqr)
                values.append(-lr * rect * math.sqrt(bc2) / bc1)
        if rect_p:
            denoms = torch._foreach_sqrt(rect_sqr)
            torch._foreach_add_(denoms, eps)
            torch._foreach_addcdiv_(rect_p, rect_avg, denoms, values)


radam_step.foreach = _radam_step_foreach  # type: ignore[attr-defined]  # stepper metadata lives on the function


def qhadam_step(
    p: torch.Tensor,
    lr: float,
    mom: float,
    sqr_mom: float,
    sqr_avg: torch.Tensor,
    nu_1: float,
    nu_2: float,
    step: int,
    grad_avg: torch.Tensor,
    eps: float,
    **kwargs: Any,
) -> None:
    """QHAdam (Ma and Yarats 2019): Adam whose moments mix the debiased averages with the current gradient.

    `p -= lr * ((1-nu_1)*g + nu_1*m_hat) / (sqrt((1-nu_2)*g**2 + nu_2*v_hat) + eps)`.
    """
    bc1, bc2 = 1 - mom**step, 1 - sqr_mom**step
    assert p.grad is not None  # the optimizer steps only parameters that have a gradient
    num = grad_avg.div(bc1).mul_(nu_1).add_(p.grad, alpha=1 - nu_1)
    denom = sqr_avg.div(bc2).mul_(nu_2).addcmul_(p.grad, p.grad, value=1 - nu_2).sqrt_().add_(eps)
    p.addcdiv_(num, denom, value=-lr)
