"""Persistence, with one path rule and one writer (`paths`): model weights (`persist`), resumable checkpoints
(`checkpoint`), inference export (`export`) with its safe loader (`safe_load`) and code stored by value
(`by_value`), ONNX export (`onnx`). Every file is written atomically by `tiers.dispatch.files`.
"""

from tiers.train.io import by_value, checkpoint, export, onnx, paths, persist, safe_load
from tiers.train.io.checkpoint import *  # noqa: F403
from tiers.train.io.export import *  # noqa: F403
from tiers.train.io.onnx import *  # noqa: F403
from tiers.train.io.paths import *  # noqa: F403
from tiers.train.io.persist import *  # noqa: F403

# Literal, so type checkers read it; tests/train/test_all_lists.py checks it is the union of the modules' `__all__`.
# ruff: noqa: F405  (every name here comes from the star imports above, on purpose)
__all__ = [
    # paths
    "learner_file", "is_writer", "write_once",
    # persist
    "save_model", "load_model", "StateMismatchError", "learner_save", "learner_load", "check_model_state",
    "save_state",
    # checkpoint
    "CheckpointCallback", "save_checkpoint", "get_rng_states", "set_rng_states", "load_checkpoint_state",
    "resume_callback",
    # export
    "load_learner", "UnsafeExportError", "export_learner",
    # onnx
    "export_onnx", "onnx_inputs", "OnnxModel", "import_onnx_extra",
]
