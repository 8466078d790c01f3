"""The layer map of tiers, in one place: order, dependencies and third-party libraries.

Used by the packaging tests, the per-layer test runner and the release helper, so
the layer rules (README.md, "Layer rules") are stated once, here.
"""

# Bottom to top. Layers in one tuple are siblings: none imports another.
ORDER = (
    ("dispatch",),
    ("tensors",),
    ("pipeline",),
    ("data", "optim"),
    ("train",),
    ("vision", "text", "tabular"),
    ("collab",),
)

LAYERS = [name for group in ORDER for name in group]

# The tiers-* distributions each layer declares (directly); the chain below follows.
TIERS_DEPS = {
    "dispatch": [],
    "tensors": ["dispatch"],
    "pipeline": ["dispatch"],  # tiers.pipeline.all adds tensors' names when installed
    "data": ["dispatch", "tensors", "pipeline"],
    "optim": ["dispatch", "tensors"],
    "train": ["dispatch", "tensors", "pipeline", "data", "optim"],
    "vision": ["dispatch", "tensors", "pipeline", "data", "optim", "train"],
    "text": ["dispatch", "tensors", "pipeline", "data", "optim", "train"],
    "tabular": ["dispatch", "tensors", "pipeline", "data", "optim", "train"],
    "collab": ["dispatch", "tensors", "pipeline", "data", "optim", "train", "tabular"],
}

# Third-party distributions each layer may declare, mapped to their import names.
THIRD_PARTY = {
    "dispatch": {},
    "tensors": {"torch": "torch", "numpy": "numpy", "matplotlib": "matplotlib"},
    "pipeline": {},
    "data": {"torch": "torch", "numpy": "numpy", "pandas": "pandas", "matplotlib": "matplotlib"},
    "optim": {"torch": "torch"},
    "train": {"torch": "torch", "numpy": "numpy", "pandas": "pandas", "tqdm": "tqdm",
              "matplotlib": "matplotlib", "scikit-learn": "sklearn", "safetensors": "safetensors",
              "cloudpickle": "cloudpickle",  # optional extra tiers-train[cloudpickle], imported lazily
              # optional extras tiers-train[tensorboard] and tiers-train[onnx], imported lazily
              "tensorboard": "tensorboard", "onnx": "onnx", "onnxruntime": "onnxruntime", "onnxscript": "onnxscript"},
    "vision": {"torch": "torch", "numpy": "numpy", "pandas": "pandas", "matplotlib": "matplotlib",
               "pillow": "PIL", "torchvision": "torchvision",
               # only to build the offline sample datasets from its bundled digits (imported lazily)
               "scikit-learn": "sklearn",
               # optional extra tiers-vision[timm], imported lazily
               "timm": "timm", "huggingface-hub": "huggingface_hub", "ipywidgets": "ipywidgets"},  # [widgets] too
    "text": {"torch": "torch", "numpy": "numpy", "pandas": "pandas", "matplotlib": "matplotlib",
             "spacy": "spacy", "sentencepiece": "sentencepiece"},
    "tabular": {"torch": "torch", "numpy": "numpy", "pandas": "pandas", "matplotlib": "matplotlib",
                "scikit-learn": "sklearn"},
    "collab": {"torch": "torch", "numpy": "numpy", "pandas": "pandas"},
}


def rank(layer: str) -> int:
    """Position of `layer` in ORDER (siblings share a rank)."""
    for i, group in enumerate(ORDER):
        if layer in group:
            return i
    raise KeyError(f"unknown layer {layer!r}; known: {LAYERS}")


def chain(layer: str) -> list[str]:
    """`layer` and every tiers layer it depends on, bottom first."""
    return [name for name in LAYERS if name in TIERS_DEPS[layer] or name == layer]


from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# Modules a layer may use only when the host already provides them, never declared as dependencies:
# IPython is imported solely inside a running Jupyter/IPython kernel (to draw HTML progress tables).
HOST_PROVIDED = {"IPython"}


def dependents(layer: str) -> list[str]:
    """Every layer that declares `layer` (directly), bottom first."""
    return [name for name in LAYERS if layer in TIERS_DEPS[name]]


def dependents_closure(layers: list[str] | set[str]) -> list[str]:
    """`layers` plus every layer that depends on one of them, directly or not, bottom first."""
    found = set(layers)
    for name in LAYERS:  # bottom first, so a dependency is always seen before what depends on it
        if any(dep in found for dep in TIERS_DEPS[name]):
            found.add(name)
    return [name for name in LAYERS if name in found]

# What each layer's tests need beyond the layer and its optional extras ("*": every layer). Installed by
# tools/compat.py into the per-layer venvs, from the wheelhouse made from requirements/base.txt.
TEST_REQUIREMENTS = {
    "*": ["pytest", "hypothesis", "pytest-timeout"],
    "pipeline": ["matplotlib", "pandas"],  # show_title on an axis / a Series (skipped without them)
    "train": ["ipython", "scipy", "torchvision"],  # reference values (scipy), a torchvision model to export
}
