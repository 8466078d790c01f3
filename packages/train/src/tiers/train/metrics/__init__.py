"""Metrics: the `Metric` protocol and its accumulators (`base`), and the common metrics (`common`).
"""

from tiers.train.metrics import base, common
from tiers.train.metrics.base import *  # noqa: F403
from tiers.train.metrics.common import *  # noqa: F403

# Literal, so type checkers read it; tests/train/test_all_lists.py checks it is the union of the modules' `__all__`.
# ruff: noqa: F405  (every name here comes from the star imports above, on purpose)
__all__ = [
    # base
    "Metric", "AvgMetric", "AvgLoss", "AvgSmoothLoss", "ValueMetric", "AccumMetric", "ActivationType",
    "skm_to_fastai", "mk_metric", "LossMetric", "LossMetrics", "flatten_check",
    # common
    "accuracy", "error_rate", "top_k_accuracy", "accuracy_multi", "APScoreBinary", "BalancedAccuracy",
    "BrierScore", "BrierScoreMulti", "optim_metric", "CorpusBLEUMetric", "MatthewsCorrCoefMulti",
    "CohenKappa", "F1Score", "FBeta", "HammingLoss", "Jaccard", "Precision", "Recall", "RocAuc",
    "RocAucBinary", "MatthewsCorrCoef", "APScoreMulti", "F1ScoreMulti", "FBetaMulti", "HammingLossMulti",
    "JaccardMulti", "PrecisionMulti", "RecallMulti", "RocAucMulti", "mse", "rmse", "mae", "msle", "exp_rmspe",
    "ExplainedVariance", "R2Score", "PearsonCorrCoef", "SpearmanCorrCoef", "foreground_acc", "Dice",
    "DiceMulti", "JaccardCoeff", "JaccardCoeffMulti", "Perplexity", "perplexity",
]
