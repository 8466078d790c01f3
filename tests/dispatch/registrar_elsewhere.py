"""Loaded by test_typedispatch.py as a separate module: registers into the same `typedispatch` name, with
postponed (string) annotations, as a higher layer specialising a lower layer's function would."""

from __future__ import annotations

from fractions import Fraction

from tiers.dispatch import typedispatch


class Celsius(float):
    pass


@typedispatch
def td_describe(x: Celsius, y: str) -> str:
    return f"{float(x)}C:{y}"


@typedispatch
def td_describe(x: Fraction, y) -> str:  # noqa: F811 (that is the point: same name, one dispatcher)
    return "fraction"
