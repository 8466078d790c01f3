"""Ready optimizers: each a short list of stats and steppers handed to `Optimizer`.

Defaults follow fastai: `mom` is the first-moment factor (Adam's beta1), `sqr_mom` the second (beta2 = 0.99),
`eps=1e-5` for the Adam family, and `decouple_wd=True` (AdamW-style decay; `False` gives L2 regularization).
"""

from collections.abc import Callable
from functools import partial
from typing import Any

from .lookahead import Lookahead
from .optimizer import Optimizer
from .steppers import (
    adam_step,
    average_grad,
    average_sqr_grad,
    l2_reg,
    momentum_step,
    qhadam_step,
    radam_step,
    rms_prop_step,
    sgd_step,
    step_stat,
    weight_decay,
)
from .trust import LEVELS, lamb_step, larc_layer_lr, larc_step

__all__ = ["SGD", "Adam", "Lamb", "Larc", "QHAdam", "RAdam", "RMSProp", "ranger"]


def _check(factory: str, **ranges: tuple[Any, float, float]) -> None:
    # Each keyword is (value, low, high): low <= value < high, checked for scalars and every item of a list.
    for name, (value, low, high) in ranges.items():
        items = value if isinstance(value, (list, tuple)) else [value]
        for v in items:
            if isinstance(v, (int, float)) and not (low <= v < high):
                raise ValueError(f"{factory}: {name}={v!r} is outside [{low}, {high})")


def _decay(decouple_wd: bool) -> list:
    return [weight_decay] if decouple_wd else [l2_reg]


def SGD(params: Any, lr: float, mom: float = 0.0, wd: float = 0.0, decouple_wd: bool = True) -> Optimizer:
    """SGD with optional momentum (`mom`) and weight decay (`wd`; `decouple_wd=False` for torch's L2 form).

    Example: `SGD(model.parameters(), lr=0.1, mom=0.9)`.
    """
    _check("SGD", lr=(lr, 0, float("inf")), mom=(mom, 0, 1), wd=(wd, 0, float("inf")))
    cbs = _decay(decouple_wd)
    cbs += [average_grad, momentum_step] if mom != 0 else [sgd_step]
    return Optimizer(params, cbs, lr=lr, mom=mom, wd=wd)


def RMSProp(
    params: Any,
    lr: float,
    mom: float = 0.0,
    sqr_mom: float = 0.99,
    eps: float = 1e-8,
    wd: float = 0.0,
    decouple_wd: bool = True,
) -> Optimizer:
    """RMSProp: steps divided by the root of a moving average of squared gradients (`sqr_mom` is torch's alpha).

    With `mom`, the numerator is a momentum average of the gradients (fastai's form).
    """
    _check("RMSProp", lr=(lr, 0, float("inf")), mom=(mom, 0, 1), sqr_mom=(sqr_mom, 0, 1), eps=(eps, 0, 1))
    cbs = _decay(decouple_wd)
    cbs += ([average_grad] if mom != 0 else []) + [average_sqr_grad, rms_prop_step]
    return Optimizer(params, cbs, lr=lr, mom=mom, sqr_mom=sqr_mom, eps=eps, wd=wd)


def _adam_family(decouple_wd: bool, stepper: Any, dampen_sqr: bool = False) -> list:
    sqr = partial(average_sqr_grad, dampening=True) if dampen_sqr else average_sqr_grad
    return _decay(decouple_wd) + [partial(average_grad, dampening=True), sqr, step_stat, stepper]


def Adam(
    params: Any,
    lr: float,
    mom: float = 0.9,
    sqr_mom: float = 0.99,
    eps: float = 1e-5,
    wd: float = 0.01,
    decouple_wd: bool = True,
) -> Optimizer:
    """Adam, which is AdamW by default (`decouple_wd=True`); `decouple_wd=False` adds `wd*p` to the gradient.

    Example: `Adam(model.parameters(), lr=1e-3, wd=0.01)`.
    """
    _check("Adam", lr=(lr, 0, float("inf")), mom=(mom, 0, 1), sqr_mom=(sqr_mom, 0, 1), eps=(eps, 0, 1))
    return Optimizer(
        params, _adam_family(decouple_wd, adam_step), lr=lr, mom=mom, sqr_mom=sqr_mom, eps=eps, wd=wd
    )


def RAdam(
    params: Any,
    lr: float,
    mom: float = 0.9,
    sqr_mom: float = 0.99,
    eps: float = 1e-5,
    wd: float = 0.0,
    beta: float = 0.0,
    decouple_wd: bool = True,
) -> Optimizer:
    """Rectified Adam (Liu et al. 2020); a non-zero `beta` gives SAdam's softplus denominator."""
    _check("RAdam", lr=(lr, 0, float("inf")), mom=(mom, 0, 1), sqr_mom=(sqr_mom, 0, 1), eps=(eps, 0, 1))
    cbs = _adam_family(decouple_wd, radam_step)
    return Optimizer(params, cbs, lr=lr, mom=mom, sqr_mom=sqr_mom, eps=eps, wd=wd, beta=beta)


def QHAdam(
    params: Any,
    lr: float,
    mom: float = 0.999,
    sqr_mom: float = 0.999,
    nu_1: float = 0.7,
    nu_2: float = 1.0,
    eps: float = 1e-8,
    wd: float = 0.0,
    decouple_wd: bool = True,
) -> Optimizer:
    """Quasi-hyperbolic Adam (Ma and Yarats 2019): `nu_1`, `nu_2` weigh the averages against the raw gradient."""
    _check(
        "QHAdam", lr=(lr, 0, float("inf")), mom=(mom, 0, 1), sqr_mom=(sqr_mom, 0, 1), nu_1=(nu_1, 0, 1.0001)
    )
    cbs = _adam_family(decouple_wd, qhadam_step, dampen_sqr=True)
    return Optimizer(params, cbs, lr=lr, mom=mom, sqr_mom=sqr_mom, nu_1=nu_1, nu_2=nu_2, eps=eps, wd=wd)


def _check_level(factory: str, level: Any) -> None:
    for lv in level if isinstance(level, list) else [level]:
        if lv not in LEVELS:
            raise ValueError(f"{factory}: level={lv!r} is not one of {LEVELS}")


def Larc(
    params: Any,
    lr: float,
    mom: float = 0.9,
    clip: bool = True,
    trust_coeff: float = 0.02,
    eps: float = 1e-8,
    wd: float = 0.0,
    decouple_wd: bool = True,
    level: str = "layer",
) -> Optimizer:
    """LARC (`clip=True`: the layer rate never exceeds `lr`) or LARS (`clip=False`), You et al. 2017.

    `level` picks the norms of the trust ratio: `'layer'`, `'activation'` or `'model'`. The paper's exact
    rule is `Larc(params, lr, clip=False, decouple_wd=False, wd=...)`.
    """
    _check("Larc", lr=(lr, 0, float("inf")), mom=(mom, 0, 1), trust_coeff=(trust_coeff, 0, float("inf")))
    _check_level("Larc", level)
    cbs = [partial(larc_layer_lr, clip=clip), *_decay(decouple_wd), larc_step]
    return Optimizer(params, cbs, lr=lr, mom=mom, trust_coeff=trust_coeff, eps=eps, wd=wd, level=level)


def Lamb(
    params: Any,
    lr: float,
    mom: float = 0.9,
    sqr_mom: float = 0.99,
    eps: float = 1e-5,
    wd: float = 0.0,
    decouple_wd: bool = True,
    level: str = "layer",
) -> Optimizer:
    """LAMB (You et al. 2019): Adam steps scaled by the trust ratio `|p| / |update|`, decay inside the update.

    `level` picks the norms: `'layer'` (the paper), `'activation'` or `'model'`.
    """
    _check("Lamb", lr=(lr, 0, float("inf")), mom=(mom, 0, 1), sqr_mom=(sqr_mom, 0, 1), eps=(eps, 0, 1))
    _check_level("Lamb", level)
    cbs: list[Callable[..., Any]] = [partial(average_grad, dampening=True), average_sqr_grad, step_stat]
    cbs = cbs + [lamb_step] if decouple_wd else [l2_reg, *cbs, partial(lamb_step, decouple_wd=False)]
    return Optimizer(params, cbs, lr=lr, mom=mom, sqr_mom=sqr_mom, eps=eps, wd=wd, level=level)


def ranger(
    params: Any,
    lr: float,
    mom: float = 0.95,
    wd: float = 0.01,
    eps: float = 1e-6,
    k: int = 6,
    alpha: float = 0.5,
    **kwargs: Any,
) -> Lookahead:
    """Ranger: `RAdam` wrapped in `Lookahead` (`k` fast steps, then move `alpha` of the way back to slow weights)."""
    return Lookahead(RAdam(params, lr=lr, mom=mom, wd=wd, eps=eps, **kwargs), k=k, alpha=alpha)
