"""Without the optional extras `tiers-vision[samples]` (scikit-learn) and `tiers-vision[timm]`, tiers.vision
imports; the sample-dataset builders and timm architectures raise `ModuleNotFoundError` naming the library, the
feature and `pip install "tiers-vision[...]"`. The libraries are blocked (`sys.modules[name] = None`) in a fresh
interpreter."""

import pytest

CODE = """
from tiers.vision import make_mnist_tiny
from tiers.vision.timm import create_timm_model

dest = sys.argv[1]
attempt("mnist", lambda: make_mnist_tiny(dest))
attempt("timm", lambda: create_timm_model("resnet18", 2, pretrained=False))
out["nothing_written"] = not any(__import__("pathlib").Path(dest).rglob("*.png"))
"""


@pytest.fixture(scope="module")
def result(tmp_path_factory, run_without):
    return run_without(("sklearn", "timm"), CODE, str(tmp_path_factory.mktemp("samples") / "mnist_tiny"))


@pytest.mark.slow
def test_sample_data_names_the_samples_extra(result, check_extra):
    check_extra(result["mnist"], "sklearn", "make_mnist_tiny", "tiers-vision", "samples")
    assert result["nothing_written"] and result["loaded"] == []


@pytest.mark.slow
def test_timm_architectures_name_the_timm_extra(result, check_extra):
    check_extra(result["timm"], "timm", "timm architectures", "tiers-vision", "timm")
