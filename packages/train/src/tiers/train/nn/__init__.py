"""The model-building toolkit: layers, architecture blocks, losses, default loss choice, parameter and
module utilities, hooks and model summaries. Usable without a `Learner`.
"""

from tiers.train.nn import (
    hooks,
    layers,
    loss_choice,
    losses,
    model_blocks,
    model_utils,
    summary,
    utility_layers,
)
from tiers.train.nn.hooks import *  # noqa: F403
from tiers.train.nn.layers import *  # noqa: F403
from tiers.train.nn.loss_choice import *  # noqa: F403
from tiers.train.nn.losses import *  # noqa: F403
from tiers.train.nn.model_blocks import *  # noqa: F403
from tiers.train.nn.model_utils import *  # noqa: F403
from tiers.train.nn.summary import *  # noqa: F403
from tiers.train.nn.utility_layers import *  # noqa: F403

# Literal, so type checkers read it; tests/train/test_all_lists.py checks it is the union of the modules' `__all__`.
# ruff: noqa: F405  (every name here comes from the star imports above, on purpose)
__all__ = [
    # layers
    "Module", "Identity", "Lambda", "PartialLambda", "Flatten", "View", "ResizeBatch", "SequentialEx",
    "MergeLayer", "ProdLayer", "Cat", "AdaptiveConcatPool1d", "AdaptiveConcatPool2d", "AvgPool", "MaxPool",
    "AdaptiveAvgPool", "NormType", "BatchNorm", "InstanceNorm", "BatchNorm1dFlat", "trunc_normal_",
    "init_default", "init_linear", "ConvLayer", "LinBnDrop", "SigmoidRange", "sigmoid_range", "Embedding",
    "Mish", "Swish", "MishJit", "MishJitAutoFn", "SwishJit", "norm_types",
    # utility_layers
    "module", "sequential", "ParameterModule", "ToTensorBase", "Debugger", "TimeDistributed", "PoolType",
    "adaptive_pool", "PoolFlatten", "SimpleCNN", "sigmoid", "sigmoid_", "vleaky_relu", "inplace_relu", "mish",
    "swish", "NoneReduce",
    # model_blocks
    "SelfAttention", "PooledSelfAttention2d", "SimpleSelfAttention", "SEModule", "ResBlock", "SEBlock",
    "SEResNeXtBlock", "SeparableBlock", "icnr_init", "PixelShuffle_ICNR", "PoolingLinear", "make_divisible",
    # losses
    "BaseLoss", "CrossEntropyLossFlat", "BCEWithLogitsLossFlat", "BCELossFlat", "MSELossFlat", "L1LossFlat",
    "FocalLoss", "FocalLossFlat", "LabelSmoothingCrossEntropy", "LabelSmoothingCrossEntropyFlat", "DiceLoss",
    # loss_choice
    "default_loss", "loss_for_batch",
    # model_utils
    "unwrap_model", "params", "trainable_params", "norm_bias_params", "bn_bias_params", "requires_grad",
    "has_children", "children_and_parameters", "flatten_model", "apply_leaf", "apply_init", "in_channels",
    "one_param", "dummy_eval", "model_sizes", "num_features_model", "total_params", "has_params", "bn_types",
    # hooks
    "Hook", "Hooks", "hook_output", "hook_outputs", "dummy_eval_hooks",
    # summary
    "ModelSummary", "model_summary", "layer_info", "module_summary",
]
