"""tiers.tensors: Semantic tensors: `torch.Tensor` subclasses whose type and metadata survive torch operations, plus device and seed helpers."""

__version__ = "0.1.0"
