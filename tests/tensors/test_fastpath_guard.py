"""The fast methods of `TensorBase` turn subclass dispatch off around torch's method with a guard of their own; the
state they found is always restored: after a result, after an error, inside an explicit `DisableTorchFunction`
region or a `DisableTorchFunctionSubclass` one, and with threads calling them at the same time."""

import threading

import pytest
import torch
from torch import Tensor

from tiers.tensors import TensorImage


def _dispatch_on() -> bool:
    "Subclass dispatch works: a torch function on a typed tensor returns the typed class."
    return type(torch.cat([TensorImage(torch.zeros(2))])) is TensorImage


def test_state_restored_after_a_result_and_after_an_error():
    x = TensorImage(torch.rand(3, 4), tag="t")
    assert type(x.flip(-1)) is TensorImage and torch._C._is_torch_function_enabled() and _dispatch_on()
    with pytest.raises(RuntimeError):
        x.view(5, 7)  # the wrong number of elements: torch raises inside the guarded call
    assert torch._C._is_torch_function_enabled() and _dispatch_on()
    with pytest.raises(TypeError):
        x.flip("not a dim")
    assert torch._C._is_torch_function_enabled() and _dispatch_on()


@pytest.mark.parametrize("region", [torch._C.DisableTorchFunction, torch._C.DisableTorchFunctionSubclass])
def test_an_enclosing_region_stays_as_it_was(region):
    x = TensorImage(torch.rand(3, 4))
    with region():
        y = x.flip(-1)
        # still inside the region: torch functions give plain tensors, as the region asks
        assert not torch._C._is_torch_function_enabled()
        assert type(torch.cat([x])) is Tensor
    assert type(y) is TensorImage  # the fast method re-types as everywhere
    assert torch._C._is_torch_function_enabled() and _dispatch_on()


def test_threads_each_keep_their_own_state():
    # One thread calls fast methods inside a DisableTorchFunction region while another calls them with dispatch
    # on: torch releases the GIL inside its ops, so the calls interleave; each thread must end where it started.
    errors: list[str] = []
    start = threading.Barrier(2)

    def inside_region():
        x = TensorImage(torch.rand(64, 64))
        start.wait()
        with torch._C.DisableTorchFunction():
            for _ in range(300):
                x.flip(-1).float()
                if torch._C._is_torch_function_enabled():
                    errors.append("region thread: dispatch came back on inside its region")
                    return

    def dispatch_on():
        x = TensorImage(torch.rand(64, 64))
        start.wait()
        for _ in range(300):
            x.flip(-1).float()
            if not _dispatch_on():
                errors.append("dispatch thread: subclass dispatch was left off")
                return

    ts = [threading.Thread(target=inside_region), threading.Thread(target=dispatch_on)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert errors == []
    assert torch._C._is_torch_function_enabled() and _dispatch_on()


def test_a_guard_whose_exit_wants_the_exception_arguments_gets_them(monkeypatch):
    # torch's C `__exit__` ignores its arguments, so the fast methods pass none; a torch whose `__exit__` checks
    # them gets the three Nones of the context-manager protocol instead
    import tiers.tensors.base as base

    calls = []

    class StrictGuard:
        def __enter__(self):
            calls.append("enter")

        def __exit__(self, exc_type, exc, tb):
            calls.append(("exit", exc_type, exc, tb))

    monkeypatch.setattr(base, "_SubclassOff", StrictGuard)
    leave = base._guard_leave()
    assert calls == ["enter", ("exit", None, None, None)]  # the probe left the guard it entered
    g = StrictGuard()
    leave(g)
    assert calls[-1] == ("exit", None, None, None)

    class LooseGuard(StrictGuard):
        def __exit__(self, *args):
            calls.append(("exit", *args))

    monkeypatch.setattr(base, "_SubclassOff", LooseGuard)
    assert base._guard_leave() is LooseGuard.__exit__
