"""Ctrl-C during a fit: stopped at the end of the running batch (whole weights), one line instead of a traceback,
and the next fit starts fresh. The interrupts are real SIGINTs sent to this process."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tiers.data import DataLoaders
from tiers.train import Callback, Learner

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGINT") or sys.platform == "win32", reason="POSIX signals")


def _learner() -> Learner:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 4, generator=g)
    y = (x[:, 0] > 0).long()
    dls = DataLoaders(DataLoader(TensorDataset(x[:64], y[:64]), batch_size=16),
                      DataLoader(TensorDataset(x[64:], y[64:]), batch_size=16))
    torch.manual_seed(0)
    return Learner(dls, nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), loss_func=F.cross_entropy)


class CtrlC(Callback):
    """Sends SIGINT to this process in the middle of batch `at` (1-based) of epoch `epoch` (1-based), between the
    forward pass and the step: a Ctrl-C that lands while the weights are about to change."""

    def __init__(self, epoch: int, at: int, twice: bool = False, training: bool = True) -> None:
        self.epoch_at, self.at, self.twice, self.on_train, self.stepped = epoch, at, twice, training, []

    def after_loss(self) -> None:
        learn = self.learn
        if learn.training == self.on_train and learn.epoch + 1 == self.epoch_at and learn.iter + 1 == self.at:
            os.kill(os.getpid(), signal.SIGINT)
            if self.twice:
                os.kill(os.getpid(), signal.SIGINT)

    def after_step(self) -> None:
        self.stepped = [p.detach().clone() for p in self.learn.model.parameters()]


def test_ctrl_c_stops_after_the_step_with_one_message_and_the_next_fit_is_fresh():
    learn = _learner()
    cb = CtrlC(epoch=2, at=3)
    with pytest.raises(KeyboardInterrupt) as info:
        learn.fit(3, 1e-2, cbs=cb)
    # a plain KeyboardInterrupt (a script killed by it still ends as by SIGINT), saying where the fit stopped
    assert type(info.value) is KeyboardInterrupt
    assert info.value.fit_interrupted == {"epoch": 2, "batch": 3, "phase": "train"}
    assert str(info.value) == "interrupted at epoch 2, batch 3: the model holds the weights of the last completed step"
    # the step of batch 3 ran to its end: the weights are exactly the ones after it
    assert all(torch.equal(p, q) for p, q in zip(learn.model.parameters(), cb.stepped))
    assert learn.train_iter == 4 + 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Python's own handler is back
    old = learn.progress._st
    assert old.end == "interrupted"
    learn.fit(1)  # a fresh fit: new progress state, the table routed again and put back after
    assert learn.progress._st is not old and learn.progress._st.end == "done"
    assert learn.logger is print and len(learn.recorder.values) == 1


def test_ctrl_c_during_validation_says_so():
    learn = _learner()
    with pytest.raises(KeyboardInterrupt, match=r"^interrupted at epoch 1, batch 2: the model holds the weights of the "
                                             r"last completed step \(the interrupt came during the validation pass\)$"):
        learn.fit(2, cbs=CtrlC(epoch=1, at=2, training=False))


def test_ctrl_c_twice_stops_at_once_and_says_the_step_may_be_partial():
    learn = _learner()
    with pytest.raises(KeyboardInterrupt, match="in the middle of a batch .* the weights may be partly updated"):
        learn.fit(2, cbs=CtrlC(epoch=1, at=2, twice=True))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_fit_ended_by_an_error_leaves_ctrl_c_working():
    class Boom(Callback):
        def after_batch(self):
            raise ValueError("boom")

    learn = _learner()
    with pytest.raises(ValueError, match="boom"):
        learn.fit(1, cbs=Boom())  # after_fit never runs: the fit's handler is still installed
    with pytest.raises(KeyboardInterrupt) as info:  # outside any fit, Ctrl-C interrupts at once, as Python's does
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(100):  # the handler runs at the next bytecode boundary
            pass
    assert not hasattr(info.value, "fit_interrupted")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(ValueError, match="boom"):
        learn.fit(1, cbs=Boom())
    other = _learner()  # another learner's fit still gets its Ctrl-C handling
    with pytest.raises(KeyboardInterrupt, match="interrupted at epoch 1, batch 2: the model holds"):
        other.fit(1, cbs=CtrlC(epoch=1, at=2))


def test_a_handler_of_the_program_is_left_alone():
    seen = []
    old = signal.signal(signal.SIGINT, lambda *a: seen.append(a))
    try:
        learn = _learner()
        learn.fit(1, cbs=CtrlC(epoch=1, at=2))  # the program's handler gets the signal; the fit goes on
        assert len(seen) == 1 and len(learn.recorder.values) == 1
    finally:
        signal.signal(signal.SIGINT, old)


def test_ipython_renders_the_message_alone_unless_debugging(monkeypatch):
    with pytest.raises(KeyboardInterrupt) as info:
        _learner().fit(1, cbs=CtrlC(epoch=1, at=1))
    msg = "interrupted at epoch 1, batch 1: the model holds the weights of the last completed step"
    assert info.value._render_traceback_() == [msg]  # what IPython and Jupyter show instead of the traceback
    monkeypatch.setenv("TIERS_DEBUG", "1")
    with pytest.raises(KeyboardInterrupt) as info:
        _learner().fit(1, cbs=CtrlC(epoch=1, at=1))
    assert str(info.value) == msg and not hasattr(info.value, "_render_traceback_")  # IPython prints it all


SCRIPT = textwrap.dedent("""
    import os, signal
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset
    from tiers.data import DataLoaders
    from tiers.train import Callback, Learner

    x = torch.randn(64, 4); y = (x[:, 0] > 0).long()
    dls = DataLoaders(DataLoader(TensorDataset(x, y), batch_size=16), DataLoader(TensorDataset(x, y), batch_size=16))
    class CtrlC(Callback):
        def after_batch(self):
            if self.training and self.epoch == 0 and self.iter == 1:
                os.kill(os.getpid(), signal.SIGINT)
    learn = Learner(dls, nn.Linear(4, 2), loss_func=F.cross_entropy)
    learn.fit(2, cbs=CtrlC())
    print("not reached")
""")


@pytest.mark.parametrize("debug", [False, True])
def test_a_script_prints_one_line_or_the_traceback_with_tiers_debug(tmp_path, debug):
    script = tmp_path / "fit.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "TIERS_DEBUG"}
    if debug:
        env["TIERS_DEBUG"] = "1"
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == -signal.SIGINT, (res.returncode, res.stderr)  # still dies as by Ctrl-C (130 in a shell)
    assert "not reached" not in res.stdout
    msg = "interrupted at epoch 1, batch 2: the model holds the weights of the last completed step"
    if debug:
        assert "Traceback (most recent call last)" in res.stderr and msg in res.stderr
    else:
        assert res.stderr == msg + "\n"
