"""Metrics that would report a silent, meaningless number refuse by name, with the fix (AUDIT C4/C5): `accuracy` /
`error_rate` on a regression learner, `msle` with negative values, `RocAucBinary` (and the other binary softmax
metrics) on a model that does not output two columns. Each runs a real fit of a tiny model."""

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tiers.data import DataLoaders
from tiers.train import (
    APScoreBinary,
    Learner,
    MSELossFlat,
    RocAuc,
    RocAucBinary,
    accuracy,
    error_rate,
    mae,
    msle,
    rmse,
)

torch.set_num_threads(1)


def _dls(y: torch.Tensor, n_in: int = 3) -> DataLoaders:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(len(y), n_in, generator=g)
    return DataLoaders(DataLoader(TensorDataset(x[:48], y[:48]), batch_size=16),
                       DataLoader(TensorDataset(x[48:], y[48:]), batch_size=16))


def _fit(learn: Learner) -> None:
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, 1e-2)


def _regression(metrics, y=None) -> Learner:
    y = torch.linspace(0.5, 9.5, 64)[torch.randperm(64, generator=torch.Generator().manual_seed(1))] if y is None else y
    torch.manual_seed(0)
    return Learner(_dls(y.unsqueeze(1)), nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1)),
                   loss_func=MSELossFlat(), metrics=metrics)


@pytest.mark.parametrize("metric", [accuracy, error_rate])
def test_accuracy_on_a_regression_learner_refuses_naming_the_fix(metric):
    learn = _regression([metric])
    with pytest.raises(ValueError) as e:
        _fit(learn)
    msg = str(e.value)
    assert msg.startswith(metric.__name__) and "one column" in msg and "regression" in msg
    assert "rmse" in msg and "mae" in msg and "CategoryBlock" in msg


def test_accuracy_with_fractional_float_targets_refuses():
    with pytest.raises(ValueError, match=r"fractional floats \(e\.g\. 0\.5\)"):
        accuracy(torch.randn(4, 3), torch.tensor([0.5, 1.0, 2.0, 0.0]))


def test_accuracy_still_works_for_classification_and_integral_float_targets():
    y = (torch.arange(64) % 3).long()
    torch.manual_seed(0)
    learn = Learner(_dls(y), nn.Linear(3, 3), metrics=[accuracy, error_rate])
    _fit(learn)
    acc, err = learn.recorder.values[-1][-2:]
    assert 0 <= acc <= 1 and acc + err == pytest.approx(1)
    # float targets holding class indices (fastai accepts them): compared as classes
    inp = torch.tensor([[0.1, 0.9, 0.0], [2.0, 0.0, 0.0]])
    assert float(accuracy(inp, torch.tensor([1.0, 2.0]))) == 0.5


def test_the_regression_metrics_the_message_names_work():
    learn = _regression([rmse, mae])
    _fit(learn)
    assert all(v > 0 for v in learn.recorder.values[-1][-2:])


def test_msle_refuses_negative_targets_and_predictions_below_minus_one():
    y = torch.linspace(-3.0, 5.0, 64).flip(0)  # the validation rows (the last 16) hold the negative targets
    learn = _regression([msle], y=y)
    with pytest.raises(ValueError, match=r"msle: the targets contain negative values \(min -3\)"):
        _fit(learn)
    with pytest.raises(ValueError, match=r"msle: the predictions contain values <= -1 \(min -2\)"):
        msle(torch.tensor([1.0, -2.0]), torch.tensor([1.0, 2.0]))
    # a prediction in (-1, 0) has a finite log(1 + x): counted, as scikit-learn counts it
    expect = ((math.log(0.5) - math.log(2.0)) ** 2 + (math.log(2.0) - math.log(3.0)) ** 2) / 2
    assert float(msle(torch.tensor([-0.5, 1.0]), torch.tensor([1.0, 2.0]))) == pytest.approx(expect, rel=1e-5)
    learn = _regression([msle])  # targets 0.5..9.5
    _fit(learn)
    assert learn.recorder.values[-1][-1] >= 0


def _classifier(n_out: int, metrics) -> Learner:
    y = (torch.arange(64) % 3).long()
    torch.manual_seed(0)
    return Learner(_dls(y), nn.Linear(3, n_out), loss_func=nn.CrossEntropyLoss(), metrics=metrics)


def test_roc_auc_binary_on_a_three_class_model_says_use_roc_auc():
    pytest.importorskip("sklearn")
    learn = _classifier(3, [RocAucBinary()])
    with pytest.raises(ValueError) as e:
        _fit(learn)
    msg = str(e.value)
    assert msg.startswith("RocAucBinary: ") and "3 columns" in msg and "use RocAuc() (one-vs-rest)" in msg
    with pytest.raises(ValueError, match=r"APScoreBinary: .*for 3 classes use APScoreMulti"):
        _fit(_classifier(3, [APScoreBinary()]))
    learn = _classifier(3, [RocAuc()])  # the fix works
    _fit(learn)
    assert 0 <= learn.recorder.values[-1][-1] <= 1


def test_roc_auc_binary_on_a_one_output_model_names_the_sigmoid_metric():
    with pytest.raises(ValueError, match=r"RocAucBinary: .*\(1 column\).*RocAucMulti\(\)"):
        RocAucBinary()._activate(torch.randn(5, 1))


def test_roc_auc_binary_on_two_classes_still_works():
    pytest.importorskip("sklearn")
    y = (torch.arange(64) % 2).long()
    torch.manual_seed(0)
    learn = Learner(_dls(y), nn.Linear(3, 2), loss_func=nn.CrossEntropyLoss(), metrics=[RocAucBinary()])
    _fit(learn)
    assert 0 <= learn.recorder.values[-1][-1] <= 1
