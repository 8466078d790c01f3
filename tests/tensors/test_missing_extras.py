"""Without the optional extra `tiers-tensors[plots]` (matplotlib), tiers.tensors imports and computes; each
drawing function raises `ModuleNotFoundError` naming matplotlib, the function and `pip install
"tiers-tensors[plots]"`. matplotlib is blocked (`sys.modules["matplotlib"] = None`) in a fresh interpreter."""

import pytest

CODE = """
import torch
from tiers.tensors import TensorBBox, TensorImage, TensorPoint, show_image, subplots

img = TensorImage(torch.rand(3, 8, 8))
out["computes"] = float((img * 2).sum()) > 0  # the tensors themselves need no matplotlib
attempt("show_image", lambda: show_image(img))
attempt("subplots", lambda: subplots(2, 2))
attempt("image_show", img.show)
attempt("points", TensorPoint.create([[1, 2], [3, 4]]).show)
attempt("bbox", TensorBBox.create([[0, 0, 5, 5]]).show)
"""


@pytest.fixture(scope="module")
def result(run_without):
    return run_without(("matplotlib",), CODE)


@pytest.mark.slow
def test_tensors_work_without_matplotlib(result):
    assert result["computes"] is True and result["loaded"] == []


@pytest.mark.slow
@pytest.mark.parametrize("key, feature", [("show_image", "show_image"), ("subplots", "subplots"),
                                          ("image_show", "show_image"), ("points", "TensorPoint.show"),
                                          ("bbox", "TensorBBox.show")])
def test_each_drawing_function_names_the_plots_extra(result, key, feature, check_extra):
    check_extra(result[key], "matplotlib", feature, "tiers-tensors", "plots")
