"""The API-break gate's rules on small sources: what breaks users and what does not."""

from api_gate import breaks, layer_api

OLD = {
    "tiers/x/__init__.py": "from tiers.x.core import f, C\n__all__ = ['f', 'C', 'K']\nK = 1\n",
    "tiers/x/core.py": (
        "def f(a, b=1, *, c=2): ...\n"
        "class C:\n    def __init__(self, n, m=0): ...\n"
        "def _private(x): ...\n"
    ),
    "tiers/x/_impl.py": "def helper(): ...\n",
}


def _api(**changes):
    return layer_api({**OLD, **changes})


def test_the_same_source_has_no_break_and_private_parts_are_not_api():
    assert breaks(_api(), _api()) == []
    assert not any("_private" in k or "_impl" in k for k in _api())
    assert breaks(_api(), _api(**{"tiers/x/_impl.py": "def other(): ...\n"})) == []


def test_additions_do_not_break():
    new = OLD["tiers/x/core.py"].replace("def f(a, b=1, *, c=2)", "def f(a, b=1, *, c=2, d=None)") + "def g(): ...\n"
    assert breaks(_api(), _api(**{"tiers/x/core.py": new})) == []


def test_removed_renamed_and_reshaped_names_break():
    core = OLD["tiers/x/core.py"]
    assert breaks(_api(), _api(**{"tiers/x/core.py": core.replace("def f(", "def f2(")})) == ["tiers.x.core:f: name removed"]
    assert breaks(_api(), _api(**{"tiers/x/core.py": core.replace("b=1", "bb=1")})) == [
        "tiers.x.core:f: parameter 'b' removed or renamed"]
    assert breaks(_api(), _api(**{"tiers/x/core.py": core.replace("*, c=2", "*, c=2, d")})) == [
        "tiers.x.core:f: new required parameter 'd'"]
    assert breaks(_api(), _api(**{"tiers/x/core.py": core.replace("self, n, m=0", "self, m=0, n=1")})) == [
        "tiers.x.core:C: positional parameter 'n' moved from position 0 to 1"]
    assert breaks(_api(), _api(**{"tiers/x/__init__.py": OLD["tiers/x/__init__.py"].replace(", 'K'", "")})) == [
        "tiers.x:K: name removed"]
    assert "tiers.x.core: module removed" in breaks(_api(), layer_api({"tiers/x/__init__.py": "__all__ = []\n"}))
