"""`make_adult_sample` returns tiers' `Path` (AUDIT2 D16): what follows it in a listing (`path.parent.ls()`) works."""

from tiers.dispatch import Path
from tiers.tabular.samples import make_adult_sample


def test_make_adult_sample_returns_a_path_with_ls(tmp_path):
    out = make_adult_sample(tmp_path / "adult_sample", n=50)
    assert isinstance(out, Path) and out.name == "adult.csv"
    assert [p.name for p in out.parent.ls()] == ["adult.csv"]
