"""tiers.train: The `Learner` with two-way callbacks, schedules, `lr_find`, metrics, losses, layers, mixed precision, checkpoints and export.

`Learner(dls, model, metrics=accuracy).fit_one_cycle(3, 1e-3)` trains any `nn.Module` on tiers or plain
torch loaders; callbacks (`tiers.train.callbacks`) see and change every step of the loop.

Layout: `learner` (the Learner), `state` (the loop's state), `events` (event names and cancel exceptions),
`callbacks/` (every callback), `metrics/`, `nn/` (the model-building toolkit, usable without a Learner),
`io/` (save, checkpoint, export), `fastprogress` (`progress_bar`, `master_bar`), `interpret` (inspecting a trained classifier).
"""

__version__ = "0.1.0"

from tiers.train import (
    callbacks,
    checks,
    events,
    fastprogress,
    interpret,
    io,
    learner,
    metrics,
    nn,
    plain_torch,
    predict,
    state,
)
from tiers.train.callbacks import *  # noqa: F403
from tiers.train.checks import *  # noqa: F403
from tiers.train.events import *  # noqa: F403
from tiers.train.fastprogress import *  # noqa: F403
from tiers.train.interpret import *  # noqa: F403
from tiers.train.io import *  # noqa: F403
from tiers.train.learner import *  # noqa: F403
from tiers.train.metrics import *  # noqa: F403
from tiers.train.nn import *  # noqa: F403
from tiers.train.plain_torch import *  # noqa: F403
from tiers.train.predict import *  # noqa: F403
from tiers.train.state import *  # noqa: F403

# Literal, so type checkers read it; tests/train/test_all_lists.py checks it is the union of the modules' `__all__`.
# ruff: noqa: F405  (every name here comes from the star imports above, on purpose)
__all__ = [
    # callbacks
    "Callback", "TrainEvalCallback", "CastToTensor", "GatherPredsCallback", "FetchPredsCallback",
    "before_batch_cb", "ProgressCallback", "Recorder", "format_time", "sched_lin", "sched_cos", "sched_no",
    "sched_exp", "SchedLin", "SchedCos", "SchedNo", "SchedExp", "SchedPoly", "combine_scheds", "combined_cos",
    "ParamScheduler", "annealer", "LRFinder", "minimum", "steep", "valley", "slide", "SuggestionMethod",
    "TrackerCallback", "EarlyStoppingCallback", "SaveModelCallback", "ReduceLROnPlateau",
    "GradientAccumulation", "GradientClip", "TerminateOnNaNCallback", "ChannelsLast", "ShortEpochCallback",
    "set_bn_eval", "BnFreeze", "MCDropoutCallback", "SkipToEpoch", "MixHandler", "MixUp", "CutMix", "reduce_loss", "MixedPrecision",
    "get_amp_dtype", "rank_distrib", "num_distrib", "DistributedDL", "DistributedTrainer", "setup_distrib",
    "teardown_distrib", "LoggerCallback", "CSVLogger", "ShowGraphCallback", "TensorBoardCallback", "CollectDataCallback",
    "HookCallback", "ActivationStats", "LayerStats",
    # checks
    "NonFiniteLossError",
    # events
    "Event", "event", "CancelFitException", "CancelEpochException", "CancelTrainException",
    "CancelValidException", "CancelBatchException", "CancelBackwardException", "CancelStepException",
    # fastprogress
    "progress_bar", "master_bar",
    # interpret
    "Interpretation", "ClassificationInterpretation", "SegmentationInterpretation",
    # io
    "learner_file", "is_writer", "write_once", "save_model", "load_model", "StateMismatchError",
    "learner_save", "learner_load", "check_model_state", "save_state", "CheckpointCallback",
    "save_checkpoint", "get_rng_states", "set_rng_states", "load_checkpoint_state", "resume_callback",
    "load_learner", "UnsafeExportError", "export_learner", "export_onnx", "onnx_inputs", "OnnxModel",
    "import_onnx_extra",
    # learner
    "Learner",
    # metrics
    "Metric", "AvgMetric", "AvgLoss", "AvgSmoothLoss", "ValueMetric", "AccumMetric", "ActivationType",
    "skm_to_fastai", "mk_metric", "LossMetric", "LossMetrics", "flatten_check", "accuracy", "error_rate",
    "top_k_accuracy", "accuracy_multi", "APScoreBinary", "BalancedAccuracy", "BrierScore", "BrierScoreMulti",
    "optim_metric", "CorpusBLEUMetric", "MatthewsCorrCoefMulti", "CohenKappa", "F1Score", "FBeta",
    "HammingLoss", "Jaccard", "Precision", "Recall", "RocAuc", "RocAucBinary", "MatthewsCorrCoef",
    "APScoreMulti", "F1ScoreMulti", "FBetaMulti", "HammingLossMulti", "JaccardMulti", "PrecisionMulti",
    "RecallMulti", "RocAucMulti", "mse", "rmse", "mae", "msle", "exp_rmspe", "ExplainedVariance", "R2Score",
    "PearsonCorrCoef", "SpearmanCorrCoef", "foreground_acc", "Dice", "DiceMulti", "JaccardCoeff",
    "JaccardCoeffMulti", "Perplexity", "perplexity",
    # nn
    "Module", "Identity", "Lambda", "PartialLambda", "Flatten", "View", "ResizeBatch", "SequentialEx",
    "MergeLayer", "ProdLayer", "Cat", "AdaptiveConcatPool1d", "AdaptiveConcatPool2d", "AvgPool", "MaxPool",
    "AdaptiveAvgPool", "NormType", "BatchNorm", "InstanceNorm", "BatchNorm1dFlat", "trunc_normal_",
    "init_default", "init_linear", "ConvLayer", "LinBnDrop", "SigmoidRange", "sigmoid_range", "Embedding",
    "Mish", "Swish", "MishJit", "MishJitAutoFn", "SwishJit", "norm_types", "module", "sequential",
    "ParameterModule", "ToTensorBase", "Debugger", "TimeDistributed", "PoolType", "adaptive_pool",
    "PoolFlatten", "SimpleCNN", "sigmoid", "sigmoid_", "vleaky_relu", "inplace_relu", "mish", "swish",
    "NoneReduce", "SelfAttention", "PooledSelfAttention2d", "SimpleSelfAttention", "SEModule", "ResBlock",
    "SEBlock", "SEResNeXtBlock", "SeparableBlock", "icnr_init", "PixelShuffle_ICNR", "PoolingLinear",
    "make_divisible", "BaseLoss", "CrossEntropyLossFlat", "BCEWithLogitsLossFlat", "BCELossFlat",
    "MSELossFlat", "L1LossFlat", "FocalLoss", "FocalLossFlat", "LabelSmoothingCrossEntropy",
    "LabelSmoothingCrossEntropyFlat", "DiceLoss", "default_loss", "loss_for_batch", "unwrap_model", "params",
    "trainable_params", "norm_bias_params", "bn_bias_params", "requires_grad", "has_children",
    "children_and_parameters", "flatten_model", "apply_leaf", "apply_init", "in_channels", "one_param",
    "dummy_eval", "model_sizes", "num_features_model", "total_params", "has_params", "bn_types", "Hook",
    "Hooks", "hook_output", "hook_outputs", "dummy_eval_hooks", "ModelSummary", "model_summary", "layer_info",
    "module_summary",
    # plain_torch
    "DictBatch", "as_dataloaders", "as_opt_func", "loss_activation", "loss_decodes",
    # predict: no public names of its own (the Learner delegates to it)
    # state
    "LoopState", "LOOP_ATTRS",
]
