"""Bugs the type checker found in tiers.train (issue 19), each pinned by a test that failed before the fix."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from tiers.data import DataLoaders  # noqa: E402
from tiers.train import ClassificationInterpretation, Interpretation, Learner  # noqa: E402
from tiers.train.io.onnx import OnnxModel, _TabularPrep  # noqa: E402


def _learner() -> Learner:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 3, generator=g)
    y = (x[:, 0] > 0).long()
    dls = DataLoaders(DataLoader(TensorDataset(x[:32], y[:32]), batch_size=16),
                      DataLoader(TensorDataset(x[32:], y[32:]), batch_size=16))
    torch.manual_seed(0)
    learn = Learner(dls, nn.Linear(3, 2))
    learn.logger = lambda *a: None
    return learn


def test_a_hand_built_interpretation_without_predictions_says_how_to_get_them():
    # The constructor's preds/targs/decoded are optional; plotting or a confusion matrix without them used to fail
    # with "'NoneType' object is not subscriptable".
    learn = _learner()
    losses = torch.rand(16)
    with pytest.raises(ValueError, match=r"plot_top_losses: this Interpretation has no preds, targs, decoded; build "
                                         r"it with Interpretation.from_learner\(learn\)"):
        Interpretation(learn, learn.dls.valid, losses).plot_top_losses(3)
    with pytest.raises(ValueError, match=r"confusion_matrix: .* has no decoded; build it with "
                                         r"ClassificationInterpretation.from_learner"):
        ClassificationInterpretation(learn, learn.dls.valid, losses, preds=torch.rand(16, 2),
                                     targs=torch.zeros(16, dtype=torch.long)).confusion_matrix()
    # Given everything, both work as from_learner's do.
    interp = ClassificationInterpretation.from_learner(learn)
    again = ClassificationInterpretation(learn, learn.dls.valid, interp.losses, interp.inputs, interp.preds,
                                         interp.targs, interp.decoded)
    assert torch.equal(again.confusion_matrix(), interp.confusion_matrix())
    assert again.confusion_matrix().sum() == 16


def test_tabular_onnx_wrapper_called_without_continuous_inputs_says_so():
    spec = dict(fill=[0.5], has_fill=[True], mean=[1.0], std=[2.0], na_src=[], na_true=[], na_false=[], order=[0],
                with_cont=True)
    class Both(nn.Module):  # shows what the model is given
        def forward(self, c, x):
            return c, x

    model = OnnxModel(Both(), tabular=_TabularPrep(spec))
    cat, cont = torch.zeros(4, 1, dtype=torch.long), torch.tensor([[1.0], [float("nan")], [3.0], [5.0]])
    full_cat, normed = model(cat, cont)
    assert torch.equal(full_cat, cat) and torch.allclose(normed, torch.tensor([[0.0], [-0.25], [1.0], [2.0]]))
    with pytest.raises(ValueError, match="the model reads continuous columns too: pass x_cont with x_cat"):
        model(cat)  # used to be torch.isnan(None): "isnan(): argument 'input' must be Tensor, not NoneType"
