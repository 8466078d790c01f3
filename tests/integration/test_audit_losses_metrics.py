"""Audit: losses and metrics give fastai 2.8.12's numbers on the same tensors (values recorded by running this
file's expressions in the bench environment, the only one with fastai): flattened losses for classification and
segmentation (axis=1), class weights, label smoothing, focal, BCE with pos_weight, Dice, decodes/activation, and the
functional metrics."""

import pytest
import torch

from tiers.train.all import (
    BCEWithLogitsLossFlat,
    CrossEntropyLossFlat,
    DiceLoss,
    FocalLossFlat,
    L1LossFlat,
    LabelSmoothingCrossEntropy,
    LabelSmoothingCrossEntropyFlat,
    MSELossFlat,
    Perplexity,
    accuracy,
    accuracy_multi,
    error_rate,
    exp_rmspe,
    foreground_acc,
    mae,
    msle,
    rmse,
    top_k_accuracy,
)

torch.manual_seed(0)
out = torch.randn(6, 3)
t = torch.tensor([0, 1, 2, 2, 1, 0])
seg = torch.randn(2, 3, 4, 4)
st = torch.randint(0, 3, (2, 4, 4))
ml = torch.randn(6, 3)
mt = (torch.rand(6, 3) > 0.5).float()

FASTAI = {'acc': 0.3333333432674408,
 'acc_multi': 0.3333333432674408,
 'acc_multi_nosig': 0.3333333432674408,
 'bce': 0.921610951423645,
 'bce_decodes': [[False, False, True], [False, True, True], [True, False, True], [False, True, False],
                 [False, False, True], [False, True, True]],
 'bce_pw': 1.26304030418396,
 'ce': 1.498369812965393,
 'ce_act': [[0.13501065969467163, 0.13147717714309692, 0.7335121631622314],
            [0.521210789680481, 0.42901232838630676, 0.04977690055966377],
            [0.0818263590335846, 0.7343354225158691, 0.18383821845054626],
            [0.2948931157588959, 0.2903040051460266, 0.4148028492927551],
            [0.349678635597229, 0.4258054792881012, 0.22451595962047577],
            [0.06626297533512115, 0.3911669850349426, 0.5425700545310974]],
 'ce_decodes': [2, 0, 1, 2, 1, 2],
 'ce_seg': 1.3401600122451782,
 'ce_w': 1.3197969198226929,
 'dice': 3.6835227012634277,
 'error_rate': 0.6666666269302368,
 'exp_rmspe': 0.8196830153465271,
 'focal': 0.9752508997917175,
 'focal_seg': 0.9240270256996155,
 'foreground': 0.4583333432674408,
 'l1': 1.1774078607559204,
 'ls': 1.4837849140167236,
 'ls_flat_seg': 1.3539637327194214,
 'mae': 1.1774078607559204,
 'mse': 2.0518736839294434,
 'msle': 0.4235111474990845,
 'perplexity': 'perplexity',
 'rmse': 1.432436227798462,
 'top2': 0.8333333134651184}

CASES = [
    ('ce', lambda: CrossEntropyLossFlat()(out,t)),
    ('ce_seg', lambda: CrossEntropyLossFlat(axis=1)(seg,st)),
    ('ce_w', lambda: CrossEntropyLossFlat(weight=torch.tensor([1.,2.,3.]))(out,t)),
    ('ls', lambda: LabelSmoothingCrossEntropy()(out,t)),
    ('ls_flat_seg', lambda: LabelSmoothingCrossEntropyFlat(axis=1)(seg,st)),
    ('focal', lambda: FocalLossFlat(gamma=2)(out,t)),
    ('focal_seg', lambda: FocalLossFlat(axis=1)(seg,st)),
    ('bce', lambda: BCEWithLogitsLossFlat()(ml,mt)),
    ('bce_pw', lambda: BCEWithLogitsLossFlat(pos_weight=torch.tensor([1.,2.,3.]))(ml,mt)),
    ('dice', lambda: DiceLoss()(seg,st)),
    ('mse', lambda: MSELossFlat()(out[:,0], t.float())),
    ('l1', lambda: L1LossFlat()(out[:,0], t.float())),
    ('ce_decodes', lambda: CrossEntropyLossFlat().decodes(out)),
    ('ce_act', lambda: CrossEntropyLossFlat().activation(out)),
    ('bce_decodes', lambda: BCEWithLogitsLossFlat().decodes(ml)),
    ('acc', lambda: accuracy(out,t)),
    ('acc_multi', lambda: accuracy_multi(ml,mt)),
    ('acc_multi_nosig', lambda: accuracy_multi(ml.sigmoid(),mt, sigmoid=False, thresh=0.3)),
    ('foreground', lambda: foreground_acc(seg,st)),
    ('top2', lambda: top_k_accuracy(out,t,k=2)),
    ('error_rate', lambda: error_rate(out,t)),
    ('rmse', lambda: rmse(out[:,0], t.float())),
    ('exp_rmspe', lambda: exp_rmspe(out[:,0], t.float()+1)),
    ('mae', lambda: mae(out[:,0], t.float())),
    ('msle', lambda: msle(out[:,0].abs(), t.float())),
    ('perplexity', lambda: Perplexity().name),
]


@pytest.mark.parametrize(("name", "fn"), CASES, ids=[n for n, _ in CASES])
def test_same_value_as_fastai(name, fn):
    got = fn()
    want = FASTAI[name]
    if isinstance(want, str):
        assert got == want
    else:
        got = torch.as_tensor(got, dtype=torch.float64).flatten().tolist()
        assert got == pytest.approx(torch.as_tensor(want, dtype=torch.float64).flatten().tolist(), abs=1e-5)
