"""fastai 2.8 public behaviour of the train layer: metrics, losses, layers, schedules, lr_find suggestions,
hooks and the training callbacks, checked as documented (expected values from sklearn, scipy or by hand).
"""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.stats
import sklearn.metrics as skm
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tiers.data import DataLoaders
from tiers.optim import SGD
from tiers.train.all import (
    AccumMetric,
    ActivationType,
    AdaptiveConcatPool2d,
    AvgMetric,
    BalancedAccuracy,
    BatchNorm,
    BCEWithLogitsLossFlat,
    BnFreeze,
    BrierScoreMulti,
    Cat,
    ConvLayer,
    CrossEntropyLossFlat,
    Dice,
    DiceLoss,
    Embedding,
    F1Score,
    FBeta,
    Flatten,
    FocalLoss,
    FocalLossFlat,
    Hook,
    LabelSmoothingCrossEntropy,
    Lambda,
    Learner,
    LinBnDrop,
    MatthewsCorrCoef,
    MatthewsCorrCoefMulti,
    MergeLayer,
    MSELossFlat,
    NormType,
    PartialLambda,
    PearsonCorrCoef,
    Perplexity,
    R2Score,
    ResBlock,
    ResizeBatch,
    RocAuc,
    SchedCos,
    SchedExp,
    SchedLin,
    SchedNo,
    SchedPoly,
    SequentialEx,
    ShortEpochCallback,
    SigmoidRange,
    SimpleSelfAttention,
    SpearmanCorrCoef,
    View,
    accuracy,
    accuracy_multi,
    annealer,
    combine_scheds,
    combined_cos,
    dummy_eval,
    error_rate,
    exp_rmspe,
    foreground_acc,
    has_params,
    hook_output,
    hook_outputs,
    in_channels,
    init_default,
    mae,
    minimum,
    model_sizes,
    mse,
    msle,
    num_features_model,
    reduce_loss,
    rmse,
    set_bn_eval,
    slide,
    steep,
    top_k_accuracy,
    trunc_normal_,
    valley,
)


def _accum(metric, preds, targs, bs=3, with_loss=False):
    """Drive a Metric over `preds`/`targs` in batches of `bs`, as the validation loop does."""
    metric.reset()
    for i in range(0, len(preds), bs):
        p, t = preds[i : i + bs], targs[i : i + bs]
        loss = F.cross_entropy(p.flatten(0, -2), t.flatten()) if with_loss else None
        metric.accumulate(SimpleNamespace(pred=p, yb=(t,), y=t, loss=loss, training=False, to_detach=lambda x: x))
    return metric.value


G = torch.Generator().manual_seed(0)
P = torch.randn(10, 3, generator=G)
T = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
X = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
Y = torch.tensor([1.5, 2.0, 2.0, 5.0, 4.0])


# ---------------------------------------------------------------- metrics


def test_single_label_functional_metrics():
    hit = (P.argmax(-1) == T).float().mean()
    assert accuracy(P, T).item() == pytest.approx(hit.item())
    assert error_rate(P, T).item() == pytest.approx(1 - hit.item())
    top2 = P.topk(2, dim=-1).indices
    assert top_k_accuracy(P, T, k=2).item() == pytest.approx((top2 == T[:, None]).any(-1).float().mean().item())
    p6 = torch.randn(10, 6, generator=G)
    assert top_k_accuracy(p6, T).item() == pytest.approx((p6.topk(5, dim=-1).indices == T[:, None]).any(-1).float().mean().item())
    with pytest.raises(ValueError, match="k=5"):
        top_k_accuracy(P, T)  # more classes asked for than predicted (fastai: a bare torch RuntimeError)


def test_accuracy_multi_sigmoid_and_thresh():
    pm, tm = torch.randn(4, 3, generator=G), torch.tensor([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
    assert accuracy_multi(pm, tm).item() == pytest.approx(((pm.sigmoid() > 0.5) == tm.bool()).float().mean().item())
    probs = pm.sigmoid()
    got = accuracy_multi(probs, tm, thresh=0.6, sigmoid=False)
    assert got.item() == pytest.approx(((probs > 0.6) == tm.bool()).float().mean().item())


def test_regression_metrics_against_formulas():
    d = X - Y
    assert mse(X, Y).item() == pytest.approx((d**2).mean().item())
    assert mae(X, Y).item() == pytest.approx(d.abs().mean().item())
    assert msle(X, Y).item() == pytest.approx(((X.log1p() - Y.log1p()) ** 2).mean().item(), rel=1e-5)
    # rmse and exp_rmspe are AccumMetrics: computed once over all batches, not averaged per batch
    assert _accum(rmse, X, Y) == pytest.approx(math.sqrt((d**2).mean().item()), rel=1e-5)
    ex, ey = X.exp(), Y.exp()
    assert _accum(exp_rmspe, X, Y) == pytest.approx(((ey - ex) / ey).pow(2).mean().sqrt().item(), rel=1e-5)
    assert _accum(R2Score(), X, Y) == pytest.approx(skm.r2_score(Y, X), rel=1e-5)
    assert _accum(PearsonCorrCoef(), X, Y) == pytest.approx(scipy.stats.pearsonr(X, Y)[0], rel=1e-5)
    assert _accum(SpearmanCorrCoef(), X, Y) == pytest.approx(scipy.stats.spearmanr(X, Y)[0], rel=1e-5)
    assert R2Score().name == "r2_score" and PearsonCorrCoef().name == "pearsonr"


def test_sklearn_classification_metrics_on_argmax():
    pred = P.argmax(-1).numpy()
    assert _accum(BalancedAccuracy(), P, T) == pytest.approx(skm.balanced_accuracy_score(T, pred))
    assert _accum(F1Score(average="macro"), P, T) == pytest.approx(skm.f1_score(T, pred, average="macro"))
    assert _accum(FBeta(beta=2, average="macro"), P, T) == pytest.approx(skm.fbeta_score(T, pred, beta=2, average="macro"))
    assert _accum(MatthewsCorrCoef(), P, T) == pytest.approx(skm.matthews_corrcoef(T, pred))
    probs = P.softmax(-1).numpy()
    assert _accum(RocAuc(), P, T) == pytest.approx(skm.roc_auc_score(T, probs, multi_class="ovr"))
    assert F1Score().name == "f1_score"


def test_multilabel_brier_and_matthews():
    pm, tm = torch.randn(6, 3, generator=G), torch.randint(0, 2, (6, 3), generator=G)
    calls = (pm.sigmoid() > 0.5).long()
    # sklearn's score of the thresholded 0/1 calls, as fastai computes it
    assert _accum(BrierScoreMulti(), pm, tm) == pytest.approx(skm.brier_score_loss(tm.numpy(), calls.numpy()))
    assert _accum(MatthewsCorrCoefMulti(), pm, tm) == pytest.approx(skm.matthews_corrcoef(tm.flatten(), calls.flatten()))
    assert BrierScoreMulti().name == "brier_score_loss" and MatthewsCorrCoefMulti().name == "matthews_corrcoef"


def test_segmentation_and_nlp_metrics():
    sp, st = torch.randn(2, 3, 4, 4, generator=G), torch.randint(0, 3, (2, 4, 4), generator=G)
    pred = sp.argmax(1)
    fg = st != 0
    assert foreground_acc(sp, st).item() == pytest.approx((pred[fg] == st[fg]).float().mean().item())
    # Dice is for binary masks: 2 * sum(pred * targ) / sum(pred + targ) over all batches
    assert _accum(Dice(), sp, st, bs=1) == pytest.approx(2 * (pred * st).sum().item() / (pred + st).sum().item())
    lp, lt = torch.randn(2, 5, 7, generator=G), torch.randint(0, 7, (2, 5), generator=G)
    ppl = _accum(Perplexity(), lp, lt, bs=1, with_loss=True)
    per_batch = [F.cross_entropy(lp[i], lt[i]).item() for i in range(2)]
    assert ppl == pytest.approx(math.exp(sum(per_batch) / 2), rel=1e-5)


def test_avg_and_accum_metric_semantics():
    # AvgMetric weighs each batch's value by its size (5 items in batches of 3 and 2)
    f = lambda a, b: (a - b).abs().mean()  # noqa: E731
    want = (f(X[:3], Y[:3]) * 3 + f(X[3:], Y[3:]) * 2) / 5
    assert _accum(AvgMetric(f), X, Y) == pytest.approx(want.item())
    assert AvgMetric(mse).name == "mse"
    assert _accum(AccumMetric(lambda a, b: (a == b).float().mean(), dim_argmax=-1), P, T) == pytest.approx(
        (P.argmax(-1) == T).float().mean().item()
    )
    assert _accum(AccumMetric(lambda a, b: a.mean(), activation=ActivationType.Sigmoid), X, Y) == pytest.approx(
        X.sigmoid().mean().item()
    )
    pb = torch.randn(6, 2, generator=G)
    got = _accum(AccumMetric(lambda a, b: a.mean(), activation=ActivationType.BinarySoftmax), pb, torch.zeros(6))
    assert got == pytest.approx(pb.softmax(-1)[:, 1].mean().item())
    got = _accum(AccumMetric(lambda a, b: a.float().mean(), thresh=0.5, activation=ActivationType.Sigmoid), X - 2.5, Y)
    assert got == pytest.approx(0.6)
    # invert_arg passes (targ, pred), to_np passes numpy arrays
    assert _accum(AccumMetric(lambda a, b: (a - 2 * b).mean(), invert_arg=True), X, Y) == pytest.approx((Y - 2 * X).mean().item())
    assert _accum(AccumMetric(lambda a, b: type(a).__name__, to_np=True), X, Y) == "ndarray"


# ---------------------------------------------------------------- losses


def test_cross_entropy_flat_axis_decodes_activation():
    lo, lt = torch.randn(4, 3, 5, generator=G), torch.randint(0, 3, (4, 5), generator=G)
    lf = CrossEntropyLossFlat(axis=1)
    assert lf(lo, lt).item() == pytest.approx(F.cross_entropy(lo, lt).item(), rel=1e-5)
    assert torch.equal(lf.decodes(lo), lo.argmax(1))
    assert torch.allclose(CrossEntropyLossFlat().activation(P), P.softmax(-1))
    assert CrossEntropyLossFlat()(P, T.int()).item() == pytest.approx(F.cross_entropy(P, T).item(), rel=1e-5)
    assert CrossEntropyLossFlat(reduction="none")(P, T).shape == (10,)
    assert CrossEntropyLossFlat().y_int


def test_bce_flat_thresh_and_pos_weight():
    pm, tm = torch.randn(4, 3, generator=G), torch.randint(0, 2, (4, 3), generator=G).float()
    assert BCEWithLogitsLossFlat()(pm, tm).item() == pytest.approx(F.binary_cross_entropy_with_logits(pm, tm).item(), rel=1e-5)
    probs = BCEWithLogitsLossFlat().activation(pm)
    assert torch.allclose(probs, pm.sigmoid())
    # decodes works on activated outputs (get_preds applies activation first)
    assert torch.equal(BCEWithLogitsLossFlat(thresh=0.3).decodes(probs), probs > 0.3)
    pw = torch.tensor([1.0, 2.0, 3.0])
    want = F.binary_cross_entropy_with_logits(pm, tm, pos_weight=pw)
    assert BCEWithLogitsLossFlat(pos_weight=pw)(pm, tm).item() == pytest.approx(want.item(), rel=1e-5)
    assert MSELossFlat()(X[:, None], Y).item() == pytest.approx(F.mse_loss(X, Y).item())


def test_label_smoothing_and_focal_losses():
    eps, c = 0.3, 3
    logp = P.log_softmax(-1)
    per = -(1 - eps) * logp.gather(1, T[:, None]).squeeze(1) - eps / c * logp.sum(-1)
    assert LabelSmoothingCrossEntropy(eps=eps, reduction="sum")(P, T).item() == pytest.approx(per.sum().item(), rel=1e-5)
    assert LabelSmoothingCrossEntropy(reduction="none")(P, T).shape == (10,)
    ce = F.cross_entropy(P, T, reduction="none")
    focal = ((1 - (-ce).exp()) ** 2 * ce).mean()
    assert FocalLoss()(P, T).item() == pytest.approx(focal.item(), rel=1e-5)
    assert FocalLossFlat(gamma=0)(P, T).item() == pytest.approx(ce.mean().item(), rel=1e-5)


def test_dice_loss():
    sp, st = torch.randn(2, 3, 4, 4, generator=G), torch.randint(0, 3, (2, 4, 4), generator=G)
    probs, oh = sp.softmax(1), F.one_hot(st, 3).permute(0, 3, 1, 2).float()
    inter = (probs * oh).sum((2, 3))
    union = (probs + oh).sum((2, 3))
    want = (1 - (2 * inter + 1e-6) / (union + 1e-6)).sum()
    assert DiceLoss()(sp, st).item() == pytest.approx(want.item(), rel=1e-5)
    assert torch.equal(DiceLoss().decodes(sp), sp.argmax(1))


# ---------------------------------------------------------------- layers


def test_shape_layers():
    xi = torch.randn(2, 4, 5, 5, generator=G)
    assert AdaptiveConcatPool2d()(xi).shape == (2, 8, 1, 1)
    assert torch.allclose(AdaptiveConcatPool2d()(xi)[:, :4, 0, 0], xi.amax((2, 3)))
    assert Flatten()(xi).shape == (2, 100) and Flatten(full=True)(xi).shape == (200,)
    assert View(-1, 10)(xi).shape == (20, 10) and ResizeBatch(4, 25)(xi).shape == (2, 4, 25)
    assert torch.equal(Lambda(lambda x: x * 2)(X), X * 2)
    assert torch.equal(PartialLambda(lambda x, a: x + a, a=1)(X), X + 1)
    assert torch.allclose(SigmoidRange(-1, 3)(X), X.sigmoid() * 4 - 1)


def test_merge_cat_sequential_ex():
    torch.manual_seed(0)
    lin = nn.Linear(4, 4)
    x = torch.randn(1, 4)
    assert torch.allclose(SequentialEx(lin, MergeLayer())(x), lin(x) + x)
    assert SequentialEx(lin, MergeLayer(dense=True))(x).shape == (1, 8)
    assert Cat([nn.Linear(4, 2), nn.Linear(4, 3)])(x).shape == (1, 5)


def test_lin_bn_drop_and_conv_layer_structure():
    kinds = [type(m) for m in LinBnDrop(4, 3, p=0.1, act=nn.ReLU())]
    assert kinds == [nn.BatchNorm1d, nn.Dropout, nn.Linear, nn.ReLU]
    assert [type(m) for m in LinBnDrop(4, 3, p=0.1, lin_first=True)] == [nn.Linear, nn.BatchNorm1d, nn.Dropout]
    assert [type(m) for m in LinBnDrop(4, 3, bn=False)] == [nn.Linear]
    cl = ConvLayer(3, 8)
    assert [type(m) for m in cl] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU] and cl[0].bias is None
    assert [type(m) for m in ConvLayer(3, 8, bn_1st=False)] == [nn.Conv2d, nn.ReLU, nn.BatchNorm2d]
    assert ConvLayer(3, 8, norm_type=NormType.BatchZero)[1].weight.sum().item() == 0
    assert ConvLayer(3, 8, ks=5, stride=2)(torch.randn(1, 3, 9, 9)).shape == (1, 8, 5, 5)
    tr = ConvLayer(3, 8, ndim=1, transpose=True, norm_type=None, act_cls=None)
    assert isinstance(tr[0], nn.ConvTranspose1d) and tr[0].bias is not None
    assert isinstance(ConvLayer(3, 8, norm_type=NormType.Instance)[1], nn.InstanceNorm2d)


def test_batchnorm_init_and_helpers():
    bn = BatchNorm(5)
    assert torch.allclose(bn.bias, torch.full((5,), 1e-3)) and torch.all(bn.weight == 1)
    assert BatchNorm(5, norm_type=NormType.BatchZero).weight.abs().sum() == 0
    assert isinstance(BatchNorm(5, ndim=1), nn.BatchNorm1d)
    assert init_default(nn.Linear(3, 3)).bias.abs().sum() == 0
    assert trunc_normal_(torch.empty(2000), std=1.0).abs().max() <= 2.0
    emb = Embedding(100, 3)
    assert emb.weight.abs().max() <= 0.02 + 1e-6 and emb.weight.std() < 0.02
    assert in_channels(nn.Sequential(nn.Conv2d(5, 3, 1))) == 5
    with pytest.raises(ValueError):
        in_channels(nn.Sequential(nn.Linear(5, 3)))
    assert has_params(nn.Linear(2, 2)) and not has_params(nn.ReLU())


def test_blocks_forward_shapes():
    xi = torch.randn(2, 4, 6, 6, generator=G)
    ssa = SimpleSelfAttention(4)
    assert torch.equal(ssa(xi), xi)  # gamma starts at 0: identity
    assert ResBlock(1, 4, 8, stride=2)(xi).shape == (2, 8, 3, 3)
    assert ResBlock(4, 4, 2)(torch.randn(2, 16, 6, 6)).shape == (2, 8, 6, 6)  # ni and nf are multiplied by expansion


# ---------------------------------------------------------------- schedules


@pytest.mark.parametrize(
    ("sched", "want"),
    [
        (SchedLin(0, 2), [0, 0.5, 1, 1.5, 2]),
        (SchedCos(0, 2), [0, 0.2928932, 1, 1.7071068, 2]),
        (SchedNo(0, 2), [0, 0, 0, 0, 0]),
        (SchedExp(0.1, 10), [0.1, 0.3162278, 1, 3.1622777, 10]),
        (SchedPoly(0.0, 2.0, 0.5), [0, 1, 1.4142136, 1.7320508, 2]),
        (SchedPoly(2.0, 0.0, 2), [2, 1.875, 1.5, 0.875, 0]),
    ],
)
def test_schedule_values(sched, want):
    assert [float(sched(p)) for p in (0, 0.25, 0.5, 0.75, 1)] == pytest.approx(want, abs=1e-6)


def test_combine_scheds_and_combined_cos():
    f = combine_scheds([0.2, 0.3, 0.5], [SchedLin(0.0, 1.0), SchedNo(1.0, 1.0), SchedCos(1.0, 0.0)])
    assert [float(f(p)) for p in (0, 0.1, 0.2, 0.4, 0.75, 1)] == pytest.approx([0, 0.5, 1, 1, 0.5, 0], abs=1e-6)
    g = combined_cos(0.25, 1.0, 2.0, 0.0)
    assert [float(g(p)) for p in (0, 0.125, 0.25, 0.625, 1)] == pytest.approx([1, 1.5, 2, 1, 0], abs=1e-6)
    arr = combined_cos(0.25, np.array([1.0, 2.0]), np.array([2.0, 4.0]), np.array([0.0, 0.0]))(0.25)
    assert np.allclose(arr, [2.0, 4.0])
    with pytest.raises(ValueError):
        combine_scheds([0.5, 0.6], [SchedLin(0, 1), SchedLin(1, 0)])


def test_annealer_decorator():
    @annealer
    def sched_square(start, end, pos):
        return start + (end - start) * pos**2

    f = sched_square(1.0, 3.0)
    assert [f(p) for p in (0, 0.5, 1)] == pytest.approx([1, 1.5, 3])
    import pickle

    assert pickle.loads(pickle.dumps(SchedLin(0, 2)))(0.5) == 1


# ---------------------------------------------------------------- lr_find suggestions

LRS = torch.tensor(10 ** np.linspace(-6, 1, 90))
LOSSES = torch.tensor([3.0 - 2 * math.exp(-((math.log10(lr) + 2.5) ** 2) / 2) for lr in LRS.tolist()])


def test_minimum_and_steep():
    i = int(LOSSES.argmin())
    assert minimum(LRS, LOSSES, 100)[0] == pytest.approx(LRS[i].item() / 10)
    slopes = (LOSSES[1:] - LOSSES[:-1]) / (LRS[1:].log() - LRS[:-1].log())
    j = int(slopes.argmin())
    assert steep(LRS, LOSSES, 100)[0] == pytest.approx(LRS[j].item())


def test_valley_position_in_longest_descent():
    # the loss falls from index 0 to its minimum: the valley spans it, the pick is ~halfway
    i_min = int(LOSSES.argmin())
    lr, (lr2, loss) = valley(LRS, LOSSES, 100)
    third = (i_min + 1) / 3
    idx = -1 + int(third) + int(third / 2)
    assert lr == lr2 == pytest.approx(LRS[idx].item()) and loss == pytest.approx(LOSSES[idx].item())


def test_slide_walks_to_the_flat_start():
    # a strictly steepening curve never flattens: slide walks all the way to the smallest lr
    lr, (_, loss) = slide(LRS, LOSSES, 100)
    assert lr == pytest.approx(LRS[0].item()) and loss == pytest.approx(LOSSES[0].item())
    lr_adj, _ = slide(LRS, LOSSES, 100, adjust_value=2.0)
    assert lr_adj == pytest.approx(2 * LRS[0].item())


# ---------------------------------------------------------------- hooks


def _cnn():
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 5, 3, stride=2), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def test_model_inspection():
    m = _cnn()
    assert [tuple(s) for s in model_sizes(m, size=(16, 16))] == [(1, 8, 14, 14), (1, 8, 14, 14), (1, 5, 6, 6), (1, 5, 1, 1), (1, 5)]
    assert num_features_model(nn.Sequential(nn.Conv2d(3, 6, 3), nn.Conv2d(6, 7, 1))) == 7
    assert dummy_eval(m, (16, 16)).shape == (1, 5)


def test_hook_output_and_hooks():
    m = _cnn()
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    with hook_output(m[0]) as h:
        m(x)
        assert h.stored.shape == (2, 8, 14, 14) and not h.stored.requires_grad
    with hook_outputs(m[:3]) as hs:
        m(x)
        assert [tuple(s.shape) for s in hs.stored] == [(2, 8, 14, 14), (2, 8, 14, 14), (2, 5, 6, 6)]
        assert len(hs) == 3 and hs[2].stored.shape == (2, 5, 6, 6)
    lin = nn.Linear(3, 2)
    h = Hook(lin, lambda mod, i, o: o.mean().item())
    lin(torch.ones(1, 3))
    assert isinstance(h.stored, float)
    h.remove()
    assert h.removed
    h2 = Hook(lin, lambda mod, i, o: o, detach=False)
    lin(torch.ones(1, 3))
    assert h2.stored.requires_grad
    h2.remove()


# ---------------------------------------------------------------- training callbacks and helpers


def test_reduce_loss():
    loss = torch.tensor([1.0, 2.0, 6.0])
    assert reduce_loss(loss).item() == 3 and reduce_loss(loss, "sum").item() == 9
    assert torch.equal(reduce_loss(loss, "none"), loss)
    with pytest.raises(ValueError, match="reduction"):
        reduce_loss(loss, "max")


def _learn(cbs=(), model=None, n=64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    dls = DataLoaders(DataLoader(TensorDataset(x, y), 8), DataLoader(TensorDataset(x[:32], y[:32]), 8))
    torch.manual_seed(0)
    model = model or nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    return Learner(dls, model, loss_func=nn.MSELoss(), opt_func=SGD, lr=0.01, cbs=list(cbs))


def test_short_epoch_callback_cuts_train_and_valid():
    from tiers.train.all import Callback

    class Count(Callback):
        def __init__(self):
            self.n = {True: 0, False: 0}

        def before_batch(self):
            self.n[self.training] += 1

    cnt = Count()
    learn = _learn([ShortEpochCallback(pct=0.3), cnt])
    with learn.no_logging(), learn.no_bar():
        learn.fit(1)
    # 8 train batches: stops after the batch where iter/n_iter >= 0.3 (iter 3); cancelling the epoch
    # skips its validation too (fastai's CancelEpochException)
    assert cnt.n[True] == 4 and cnt.n[False] == 0
    cnt.n = {True: 0, False: 0}
    with learn.no_bar():
        learn.validate()
    assert cnt.n[False] == 3  # 4 valid batches, cut after iter 2 (2/4 >= 0.3)
    with pytest.raises(ValueError, match="pct"):
        ShortEpochCallback(pct=2)


def test_set_bn_eval_and_bn_freeze():
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
    model[1].weight.requires_grad_(False)
    model[1].bias.requires_grad_(False)
    model.train()
    set_bn_eval(model)
    assert not model[1].training and model[0].training
    learn = _learn([BnFreeze()], model=model)
    before = model[1].running_mean.clone()
    with learn.no_logging(), learn.no_bar():
        learn.fit(1)
    assert torch.equal(model[1].running_mean, before)  # frozen BN kept its statistics
    learn2 = _learn(model=nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1)))
    bn2 = learn2.model[1]
    bn2.weight.requires_grad_(False)
    with learn2.no_logging(), learn2.no_bar():
        learn2.fit(1)
    assert not torch.equal(bn2.running_mean, torch.zeros(8))  # without BnFreeze the statistics move


def test_save_model_every_epoch_period(tmp_path):
    from tiers.train.all import SaveModelCallback

    learn = _learn([SaveModelCallback(every_epoch=2, fname="m")])
    learn.path = tmp_path
    with learn.no_logging(), learn.no_bar():
        learn.fit(4)
    # fastai saves epochs 0 and 2 of 4: the period only, not the final epoch as well
    assert sorted(p.name for p in (tmp_path / learn.model_dir).iterdir()) == ["m_0.pth", "m_2.pth"]


def test_optim_metric_finds_the_best_threshold():
    from tiers.train.all import optim_metric

    def acc_t(p, t, thresh=0.5):
        return ((p > thresh) == t).float().mean()

    p, t = torch.tensor([0.1, 0.3, 0.35, 0.6, 0.8]), torch.tensor([0, 0, 1, 1, 1]).bool()
    best, x = optim_metric(acc_t, "thresh", (0, 1), get_x=True)(p, t)
    assert best == pytest.approx(1.0) and 0.3 <= x < 0.35  # at 0.5 the accuracy is only 0.8
    f = optim_metric(lambda p, t, a: (a - 0.37) ** 2, "a", (0, 1), do_neg=False, get_x=True)
    assert f(p, t)[1] == pytest.approx(0.37, abs=0.01)
    assert optim_metric(acc_t, "thresh", (0, 1)).__name__ == "opt_acc_t"
    with pytest.raises(ValueError, match="bounds"):
        optim_metric(acc_t, "thresh", (1, 0))


def test_jit_activation_names_and_layer_info():
    from tiers.train.all import MishJit, MishJitAutoFn, SwishJit, layer_info, module_summary

    x = torch.linspace(-3, 3, 7)
    assert torch.allclose(MishJit()(x), x * F.softplus(x).tanh()) and torch.allclose(MishJitAutoFn()(x), MishJit()(x))
    assert torch.allclose(SwishJit()(x), x * x.sigmoid())
    m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    m[2].weight.requires_grad_(False)
    m[2].bias.requires_grad_(False)
    info = layer_info(m, torch.randn(5, 3))
    assert [(n, p, t, tuple(s), b) for n, p, t, s, b in info] == [
        ("Linear", 16, True, (5, 4), True), ("ReLU", 0, None, (5, 4), True), ("Linear", 5, False, (5, 1), True)]
    assert "Total params: 21" in module_summary(m, torch.randn(5, 3))


def _bleu_by_hand(preds, targs):
    # corpus BLEU from its definition: clipped n-gram precisions (n=1..4), geometric mean, brevity penalty
    from collections import Counter

    corr, cnt, pl, tl = [0] * 4, [0] * 4, 0, 0
    for p, t in zip(preds, targs):
        pl, tl = pl + len(p), tl + len(t)
        for n in range(1, 5):
            pc = Counter(tuple(p[i : i + n]) for i in range(len(p) - n + 1))
            tc = Counter(tuple(t[i : i + n]) for i in range(len(t) - n + 1))
            cnt[n - 1] += sum(pc.values())
            corr[n - 1] += sum(min(c, tc[g]) for g, c in pc.items())
    bp = math.exp(1 - tl / pl) if pl < tl else 1.0
    return bp * math.prod(c / k for c, k in zip(corr, cnt)) ** 0.25


def test_corpus_bleu_metric():
    from tiers.train.all import CorpusBLEUMetric

    g = torch.Generator().manual_seed(0)
    t = torch.randint(0, 6, (3, 12), generator=g)
    ids = t.clone()
    ids[0, 3] = (t[0, 3] + 1) % 6
    ids[1, 7:] = 0
    ids[2, ::4] = 5
    m = CorpusBLEUMetric(vocab_sz=6)
    got = _accum(m, F.one_hot(ids, 6).float(), t, bs=2)
    assert got == pytest.approx(_bleu_by_hand(ids.tolist(), t.tolist()))
    assert 0 < got < 1 and m.name == "corpus_bleu"
    assert _accum(CorpusBLEUMetric(), F.one_hot(t, 6).float(), t) == pytest.approx(1.0)  # perfect predictions


def test_activation_stats_layer_stats_is_a_3_by_batches_array():
    from tiers.train.all import ActivationStats

    cb = ActivationStats()
    learn = _learn([cb])
    with learn.no_logging(), learn.no_bar():
        learn.fit(1)
    ls = cb.layer_stats(0)
    assert np.asarray(ls).shape == (3, 8)  # rows mean, std, near_zero over 8 training batches, as in fastai
    means = [b[0]["mean"] for b in cb.stats]
    assert np.allclose(np.asarray(ls)[0], means) and torch.equal(ls["mean"], ls[0].as_subclass(torch.Tensor))
    assert np.allclose(ls["near_zero"], [b[0]["near_zero"] for b in cb.stats])
    with pytest.raises(KeyError, match="median"):
        ls["median"]


def test_gradient_clip_runs_at_fastai_order():
    from tiers.train.all import Callback, GradientClip, MixedPrecision

    assert MixedPrecision.order < GradientClip.order == 11
    norms = []

    class Spy(Callback):
        order = 12  # a callback after fastai's GradientClip sees the clipped gradients

        def before_step(self):
            norms.append(torch.cat([p.grad.flatten() for p in self.model.parameters()]).norm().item())

    learn = _learn([GradientClip(max_norm=0.5), Spy()])
    with learn.no_logging(), learn.no_bar():
        learn.fit(1)
    assert len(norms) == 8 and max(norms) == pytest.approx(0.5, rel=1e-4)


def test_tracker_callbacks_run_in_fastai_order():
    from tiers.train.all import EarlyStoppingCallback, ReduceLROnPlateau, SaveModelCallback, TrackerCallback

    cbs = [EarlyStoppingCallback(), ReduceLROnPlateau(), SaveModelCallback()]
    learn = _learn(cbs)
    names = [type(c).__name__ for c in sorted(learn.cbs, key=lambda c: c.order) if isinstance(c, TrackerCallback)]
    # fastai: SaveModelCallback 61, ReduceLROnPlateau 62, EarlyStoppingCallback 63, whatever the order given
    assert names == ["SaveModelCallback", "ReduceLROnPlateau", "EarlyStoppingCallback"]
