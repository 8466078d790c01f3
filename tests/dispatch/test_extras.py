"""tiers.dispatch.extras.require: the one way a layer imports a library of one of its optional extras."""

import json
import pickle
import sys

import pytest

from tiers.dispatch.extras import MissingExtraError, require

KW = {"dist": "tiers-train", "extra": "plots", "what": "Recorder.plot_loss"}
FIX = 'pip install "tiers-train[plots]"'


def test_returns_the_module_itself():
    assert require("json", **KW) is json
    assert require("xml.dom", **KW) is sys.modules["xml.dom"]


def test_missing_library_names_the_library_the_feature_and_the_fix():
    with pytest.raises(ModuleNotFoundError) as ei:
        require("tiers_absent_lib.pyplot", **KW)
    e = ei.value
    assert isinstance(e, MissingExtraError)
    assert e.name == "tiers_absent_lib"
    assert (e.dist, e.extra, e.what) == ("tiers-train", "plots", "Recorder.plot_loss")
    msg = str(e)
    assert "Recorder.plot_loss needs tiers_absent_lib" in msg and "tiers-train[plots]" in msg and msg.endswith(FIX)
    assert isinstance(e.__cause__, ModuleNotFoundError)  # the original error stays in the traceback


def test_blocked_library_reports_the_library_not_the_submodule(monkeypatch):
    # `sys.modules[name] = None` is how the tests (and some deployments) make a library unavailable
    monkeypatch.setitem(sys.modules, "xml", None)
    monkeypatch.delitem(sys.modules, "xml.dom", raising=False)
    with pytest.raises(MissingExtraError) as ei:
        require("xml.dom", **KW)
    assert ei.value.name == "xml" and str(ei.value).startswith("Recorder.plot_loss needs xml,")


def test_missing_dependency_of_the_library_is_named_with_the_library(tmp_path, monkeypatch):
    (tmp_path / "tiers_fake_plotlib.py").write_text("import tiers_absent_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(MissingExtraError) as ei:
        require("tiers_fake_plotlib", **KW)
    assert ei.value.name == "tiers_absent_dependency"
    assert "needs tiers_absent_dependency (needed by tiers_fake_plotlib)" in str(ei.value) and FIX in str(ei.value)


def test_installed_but_broken_library_keeps_its_own_error_with_the_fix_as_a_note(tmp_path, monkeypatch):
    (tmp_path / "tiers_broken_plotlib.py").write_text("from json import no_such_name\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError) as ei:
        require("tiers_broken_plotlib", **KW)
    assert not isinstance(ei.value, ModuleNotFoundError)  # not "missing": reinstalling is the fix
    assert "no_such_name" in str(ei.value)
    assert any("tiers_broken_plotlib" in n and f"{FIX} --force-reinstall" in n for n in ei.value.__notes__)


def test_error_survives_pickling():
    # a DataLoader worker or a multiprocessing pool sends the error back pickled
    with pytest.raises(MissingExtraError) as ei:
        require("tiers_absent_lib", dist="tiers-text", extra="sentencepiece", what="SentencePieceTokenizer")
    e = pickle.loads(pickle.dumps(ei.value))
    assert type(e) is MissingExtraError and e.name == "tiers_absent_lib" and e.extra == "sentencepiece"
    assert str(e) == str(ei.value)
