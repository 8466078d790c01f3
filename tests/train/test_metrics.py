"""Every metric against scikit-learn (or scipy, or a hand computation), and the Metric protocol itself."""

from types import SimpleNamespace

import numpy as np
import pytest
import scipy.stats
import sklearn.metrics as skm
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from tiers.train import (
    AccumMetric,
    ActivationType,
    APScoreBinary,
    APScoreMulti,
    AvgLoss,
    AvgMetric,
    AvgSmoothLoss,
    BalancedAccuracy,
    BrierScore,
    CohenKappa,
    Dice,
    DiceMulti,
    ExplainedVariance,
    F1Score,
    F1ScoreMulti,
    FBeta,
    FBetaMulti,
    HammingLoss,
    HammingLossMulti,
    Jaccard,
    JaccardCoeff,
    JaccardCoeffMulti,
    JaccardMulti,
    LossMetric,
    MatthewsCorrCoef,
    Metric,
    PearsonCorrCoef,
    Perplexity,
    Precision,
    PrecisionMulti,
    R2Score,
    Recall,
    RecallMulti,
    RocAuc,
    RocAucBinary,
    RocAucMulti,
    SpearmanCorrCoef,
    ValueMetric,
    accuracy,
    accuracy_multi,
    error_rate,
    exp_rmspe,
    foreground_acc,
    mae,
    mk_metric,
    mse,
    msle,
    rmse,
    skm_to_fastai,
    top_k_accuracy,
)

g = torch.Generator().manual_seed(0)
N, C = 60, 4
LOGITS = torch.randn(N, C, generator=g)
TARG = torch.randint(0, C, (N,), generator=g)
BIN_LOGITS = torch.randn(N, 2, generator=g)
BIN_TARG = torch.randint(0, 2, (N,), generator=g)
ML_LOGITS = torch.randn(N, 3, generator=g)
ML_TARG = torch.randint(0, 2, (N, 3), generator=g)
REG_PRED = torch.rand(N, generator=g) * 3 + 0.1
REG_TARG = REG_PRED + torch.randn(N, generator=g) * 0.3


def run_batches(metric: Metric, pred: torch.Tensor, targ: torch.Tensor, bs: int = 16):
    "Feed `metric` like the Learner does: reset, accumulate batch by batch, then read `value`."
    metric.reset()
    for i in range(0, len(pred), bs):
        metric.accumulate(SimpleNamespace(pred=pred[i : i + bs], yb=(targ[i : i + bs],), loss=None))
    return metric.value


def approx(x):
    return pytest.approx(float(x), rel=1e-5, abs=1e-6)


# ---------------------------------------------------------------- functions averaged per batch


def test_accuracy_and_error_rate():
    acc = (LOGITS.argmax(1) == TARG).float().mean()
    assert accuracy(LOGITS, TARG) == approx(acc)
    assert error_rate(LOGITS, TARG) == approx(1 - acc)
    # uneven batches: the batch-size weighting makes the average exact
    assert run_batches(AvgMetric(accuracy), LOGITS, TARG, bs=7) == approx(acc)


def test_top_k_accuracy():
    manual = np.mean([t in row.topk(2).indices for row, t in zip(LOGITS, TARG)])
    assert top_k_accuracy(LOGITS, TARG, k=2) == approx(manual)
    assert skm.top_k_accuracy_score(TARG, LOGITS, k=2) == approx(top_k_accuracy(LOGITS, TARG, k=2))
    assert top_k_accuracy(LOGITS, TARG, k=C) == 1
    with pytest.raises(ValueError, match="k=9 exceeds the 4 classes"):
        top_k_accuracy(LOGITS, TARG, k=9)


def test_accuracy_multi():
    manual = ((torch.sigmoid(ML_LOGITS) > 0.5) == ML_TARG.bool()).float().mean()
    assert accuracy_multi(ML_LOGITS, ML_TARG) == approx(manual)
    probs = torch.sigmoid(ML_LOGITS)
    assert accuracy_multi(probs, ML_TARG, thresh=0.7, sigmoid=False) == approx(((probs > 0.7) == ML_TARG.bool()).float().mean())


def test_regression_functions():
    p, t = REG_PRED, REG_TARG
    assert mse(p, t) == approx(skm.mean_squared_error(t, p))
    assert mae(p, t) == approx(skm.mean_absolute_error(t, p))
    assert msle(p, t.clamp(min=0)) == approx(skm.mean_squared_log_error(t.clamp(min=0), p))
    assert run_batches(rmse, p, t) == approx(np.sqrt(skm.mean_squared_error(t, p)))
    manual = torch.sqrt((((t.exp() - p.exp()) / t.exp()) ** 2).mean())
    assert run_batches(exp_rmspe, p, t) == approx(manual)
    assert mse(p.view(-1, 1), t) == approx(skm.mean_squared_error(t, p))  # (N, 1) outputs flatten
    with pytest.raises(ValueError, match="predictions have 120 values but targets have 60"):
        mse(torch.randn(N, 2), t)


# ---------------------------------------------------------------- scikit-learn backed


@pytest.mark.parametrize(
    ("metric", "reference"),
    [
        (F1Score(average="macro"), lambda: skm.f1_score(TARG, LOGITS.argmax(1), average="macro")),
        (Precision(average="micro"), lambda: skm.precision_score(TARG, LOGITS.argmax(1), average="micro")),
        (Recall(average="weighted"), lambda: skm.recall_score(TARG, LOGITS.argmax(1), average="weighted")),
        (FBeta(2, average="macro"), lambda: skm.fbeta_score(TARG, LOGITS.argmax(1), beta=2, average="macro")),
        (Jaccard(average="macro"), lambda: skm.jaccard_score(TARG, LOGITS.argmax(1), average="macro")),
        (BalancedAccuracy(), lambda: skm.balanced_accuracy_score(TARG, LOGITS.argmax(1))),
        (MatthewsCorrCoef(), lambda: skm.matthews_corrcoef(TARG, LOGITS.argmax(1))),
        (CohenKappa(weights="quadratic"), lambda: skm.cohen_kappa_score(TARG, LOGITS.argmax(1), weights="quadratic")),
        (HammingLoss(), lambda: skm.hamming_loss(TARG, LOGITS.argmax(1))),
        (RocAuc(), lambda: skm.roc_auc_score(TARG, F.softmax(LOGITS, 1), multi_class="ovr")),
        (RocAuc(multi_class="ovo"), lambda: skm.roc_auc_score(TARG, F.softmax(LOGITS, 1), multi_class="ovo")),
    ],
    ids=lambda x: getattr(x, "name", ""),
)
def test_single_label_sklearn_metrics(metric, reference):
    assert run_batches(metric, LOGITS, TARG) == approx(reference())


@pytest.mark.parametrize(
    ("metric", "reference"),
    [
        (F1Score(), lambda: skm.f1_score(BIN_TARG, BIN_LOGITS.argmax(1))),
        (RocAucBinary(), lambda: skm.roc_auc_score(BIN_TARG, F.softmax(BIN_LOGITS, 1)[:, 1])),
        (APScoreBinary(), lambda: skm.average_precision_score(BIN_TARG, F.softmax(BIN_LOGITS, 1)[:, 1])),
        (BrierScore(), lambda: skm.brier_score_loss(BIN_TARG, F.softmax(BIN_LOGITS, 1)[:, 1])),
    ],
    ids=lambda x: getattr(x, "name", ""),
)
def test_binary_sklearn_metrics(metric, reference):
    assert run_batches(metric, BIN_LOGITS, BIN_TARG) == approx(reference())


@pytest.mark.parametrize(
    ("metric", "reference"),
    [
        (F1ScoreMulti(), lambda p: skm.f1_score(ML_TARG, p >= 0.5, average="macro")),
        (FBetaMulti(0.5), lambda p: skm.fbeta_score(ML_TARG, p >= 0.5, beta=0.5, average="macro")),
        (PrecisionMulti(thresh=0.3), lambda p: skm.precision_score(ML_TARG, p >= 0.3, average="macro")),
        (RecallMulti(), lambda p: skm.recall_score(ML_TARG, p >= 0.5, average="macro")),
        (JaccardMulti(), lambda p: skm.jaccard_score(ML_TARG, p >= 0.5, average="macro")),
        (HammingLossMulti(), lambda p: skm.hamming_loss(ML_TARG, p >= 0.5)),
        (RocAucMulti(), lambda p: skm.roc_auc_score(ML_TARG, p)),
        (APScoreMulti(), lambda p: skm.average_precision_score(ML_TARG, p)),
    ],
    ids=lambda x: getattr(x, "name", ""),
)
def test_multi_label_sklearn_metrics(metric, reference):
    assert run_batches(metric, ML_LOGITS, ML_TARG) == approx(reference(torch.sigmoid(ML_LOGITS).numpy()))


def test_regression_sklearn_and_correlations():
    assert run_batches(R2Score(), REG_PRED, REG_TARG) == approx(skm.r2_score(REG_TARG, REG_PRED))
    assert run_batches(ExplainedVariance(), REG_PRED, REG_TARG) == approx(skm.explained_variance_score(REG_TARG, REG_PRED))
    assert run_batches(PearsonCorrCoef(), REG_PRED, REG_TARG) == approx(scipy.stats.pearsonr(REG_PRED, REG_TARG)[0])
    tied = torch.round(REG_TARG * 2) / 2  # ties exercise the average ranks
    assert run_batches(SpearmanCorrCoef(), REG_PRED, tied) == approx(scipy.stats.spearmanr(REG_PRED, tied)[0])


def test_skm_to_fastai_wraps_any_sklearn_metric():
    kappa = skm_to_fastai(skm.cohen_kappa_score, weights="linear")
    assert kappa.name == "cohen_kappa_score"
    assert kappa(LOGITS, TARG) == approx(skm.cohen_kappa_score(TARG, LOGITS.argmax(1), weights="linear"))
    # thresholded multi-label: sigmoid then >= thresh
    prec = skm_to_fastai(skm.precision_score, thresh=0.6, flatten=False, average="micro")
    assert prec(ML_LOGITS, ML_TARG) == approx(skm.precision_score(ML_TARG, torch.sigmoid(ML_LOGITS) >= 0.6, average="micro"))
    # regression: predictions passed through untouched
    r2 = skm_to_fastai(skm.r2_score, is_class=False)
    assert r2(REG_PRED, REG_TARG) == approx(skm.r2_score(REG_TARG, REG_PRED))


# ---------------------------------------------------------------- segmentation and language models


def test_segmentation_metrics():
    targ = torch.randint(0, 3, (4, 6, 6), generator=g)
    out = torch.randn(4, 3, 6, 6, generator=g)
    pred = out.argmax(1)
    mask = targ != 0
    assert foreground_acc(out, targ) == approx((pred[mask] == targ[mask]).float().mean())
    # binary Dice / IoU
    bin_targ = (targ > 1).long()
    bin_out = torch.stack([-out[:, 0], out[:, 0]], dim=1)
    bp = bin_out.argmax(1)
    inter, total = (bp * bin_targ).sum().item(), (bp.sum() + bin_targ.sum()).item()
    assert run_batches(Dice(), bin_out, bin_targ, bs=3) == approx(2 * inter / total)
    assert run_batches(JaccardCoeff(), bin_out, bin_targ, bs=3) == approx(inter / (total - inter))
    f1_per_class = skm.f1_score(targ.view(-1), pred.view(-1), average=None)
    assert run_batches(DiceMulti(), out, targ, bs=3) == approx(np.mean(f1_per_class))
    iou_per_class = skm.jaccard_score(targ.view(-1), pred.view(-1), average=None)
    assert run_batches(JaccardCoeffMulti(), out, targ, bs=3) == approx(np.mean(iou_per_class))


def test_losses_as_metrics():
    losses = [torch.tensor(2.0), torch.tensor(4.0)]
    sizes = [3, 1]
    avg = AvgLoss()
    for loss, bs in zip(losses, sizes):
        avg.accumulate(SimpleNamespace(loss=loss, yb=(torch.zeros(bs),)))
    assert avg.value == approx(2.5) and avg.name == "loss"
    ppl = Perplexity()
    for loss, bs in zip(losses, sizes):
        ppl.accumulate(SimpleNamespace(loss=loss, yb=(torch.zeros(bs),)))
    assert ppl.value == approx(np.exp(2.5)) and ppl.name == "perplexity"


def test_smooth_loss_is_debiased_ema():
    m = AvgSmoothLoss(beta=0.9)
    vals = [1.0, 2.0, 3.0]
    for v in vals:
        m.accumulate(SimpleNamespace(loss=torch.tensor(v)))
    ema = 0.0
    for v in vals:
        ema = 0.9 * ema + 0.1 * v
    assert m.value == approx(ema / (1 - 0.9**3))
    assert AvgSmoothLoss().value is None


# ---------------------------------------------------------------- protocol


def test_mk_metric_and_names():
    assert isinstance(mk_metric(accuracy), AvgMetric) and mk_metric(accuracy).name == "accuracy"
    dice = Dice()
    assert mk_metric(dice) is dice and isinstance(mk_metric(Dice), Dice)
    assert mk_metric(DiceMulti).name == "dice_multi"
    assert F1Score().name == "f1_score" and rmse.name == "rmse"
    with pytest.raises(TypeError, match="not a Metric subclass"):
        mk_metric(dict)
    with pytest.raises(TypeError, match="neither a Metric nor a function"):
        mk_metric(3)


def test_accum_metric_options():
    m = AccumMetric(lambda p, t: (p == t).float().mean(), dim_argmax=-1, name="acc")
    assert run_batches(m, LOGITS, TARG) == approx(accuracy(LOGITS, TARG))
    m2 = AccumMetric(lambda p, t: p.mean(), activation=ActivationType.Softmax, flatten=False)
    assert m2(LOGITS, TARG) == approx(1 / C)
    assert AccumMetric(lambda p, t: 0).value is None
    with pytest.raises(TypeError, match="activation='softmax'"):
        AccumMetric(lambda p, t: 0, activation="softmax")


def test_value_and_loss_metrics():
    assert ValueMetric(lambda: torch.tensor(3.0), "three").value == 3.0
    lm = LossMetric("part")
    lm.reset()
    learn = SimpleNamespace(loss_func=SimpleNamespace(part=torch.tensor(2.0)), yb=(torch.zeros(4),))
    lm.accumulate(learn)
    assert lm.value == 2.0 and lm.name == "part"


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 9), min_size=1, max_size=6), st.integers(2, 5))
def test_avg_metric_is_exact_for_any_batching(sizes, c):
    n = sum(sizes)
    pred, targ = torch.randn(n, c), torch.randint(0, c, (n,))
    m = AvgMetric(accuracy)
    m.reset()
    start = 0
    for s in sizes:
        m.accumulate(SimpleNamespace(pred=pred[start : start + s], yb=(targ[start : start + s],)))
        start += s
    assert m.value == approx(accuracy(pred, targ))


def test_avg_metric_folds_lazily_with_the_same_result():
    # Batch values are reduced when read (or every 512 batches): check every value kind and the folding threshold.
    from tiers.train.metrics import base as metric_mod

    kinds = {
        "tensor": lambda p, t: (p.argmax(-1) == t).float().mean(),
        "float": lambda p, t: float((p.argmax(-1) == t).float().mean()),
        "numpy": lambda p, t: np.float64((p.argmax(-1) == t).float().mean()),
        "vector": lambda p, t: p.mean(0),
        "int": lambda p, t: (p.argmax(-1) == t).sum(),
    }
    n_batches = metric_mod._FOLD_EVERY + 3
    g2 = torch.Generator().manual_seed(1)
    batches = [(torch.randn(bs, 3, generator=g2), torch.randint(0, 3, (bs,), generator=g2))
               for bs in torch.randint(1, 6, (n_batches,), generator=g2).tolist()]
    for name, f in kinds.items():
        m = AvgMetric(f)
        for i, (p, t) in enumerate(batches):
            m.accumulate(SimpleNamespace(pred=p, yb=(t,)))
            if i == 10:
                partial_total = m.total  # reading mid-pass folds and keeps accumulating
        eager = sum(torch.as_tensor(f(p, t), dtype=torch.float64) * len(t) for p, t in batches)
        n = sum(len(t) for _, t in batches)
        torch.testing.assert_close(torch.as_tensor(m.value, dtype=torch.float64), eager / n, rtol=1e-5, atol=1e-6, msg=name)
        assert m.count == n and partial_total is not None
    for name in ("tensor", "vector", "int"):  # one batch size throughout takes the unweighted sum
        m = AvgMetric(kinds[name])
        same = [(torch.randn(4, 3, generator=g2), torch.randint(0, 3, (4,), generator=g2)) for _ in range(8)]
        for p, t in same:
            m.accumulate(SimpleNamespace(pred=p, yb=(t,)))
        eager = sum(torch.as_tensor(kinds[name](p, t), dtype=torch.float64) for p, t in same) / len(same)
        torch.testing.assert_close(torch.as_tensor(m.value, dtype=torch.float64), eager, rtol=1e-5, atol=1e-6)
    m = AvgMetric(kinds["tensor"])
    m.accumulate(SimpleNamespace(pred=batches[0][0], yb=(batches[0][1],)))
    m.total = torch.tensor(6.0)  # assigning replaces the sum, pending batches included
    assert m.total == 6.0 and m.value == approx(6.0 / len(batches[0][1]))
    m.reset()
    assert m.value is None and m.total == 0.0


def test_avg_loss_mixes_reduced_and_unreduced_losses():
    avg = AvgLoss()
    for loss, bs in ((torch.tensor([1.0, 3.0]), 2), (torch.tensor(5.0, requires_grad=True), 2)):
        avg.accumulate(SimpleNamespace(loss=loss, yb=(torch.zeros(bs),)))
    assert avg.value == approx(3.5)
    assert not avg.total.requires_grad
