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
