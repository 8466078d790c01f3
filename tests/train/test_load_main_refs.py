"""fastbook's deployment pattern, safely: a function defined in the exporting script's `__main__` (`label_func`,
`get_x`...) loads wherever the loading process's `__main__` defines the same name (used by reference: no code from
the file runs), with a warning when its source differs; the refusal, when it is absent, names it, where it was
defined and the fixes. Real script files run in real subprocesses; the crafted-file checks run in-process."""

import hashlib
import io
import json
import pickle
import subprocess
import sys
import textwrap
import types
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from tiers.data import Categorize, Datasets, IndexSplitter, ItemGetter
from tiers.train import Learner, UnsafeExportError, load_learner
from tiers.train.io import by_value
from tiers.train.io.safe_load import SafeUnpickler, policy

torch.set_num_threads(1)

# The data every script builds (the same 40 items in every process).
_DATA = """\
import json, sys, warnings
import torch
from torch import nn
from tiers.data import Categorize, Datasets, IndexSplitter
from tiers.train import Learner, UnsafeExportError, load_learner

torch.set_num_threads(1)
g = torch.Generator().manual_seed(0)
items = [[x, "pos" if x[0] > 0 else "neg"] for x in torch.randn(40, 3, generator=g)]
CALLS = []  # get_x records its calls: a function restored by value from the file records into its own copy
"""

# The definitions of the exporting script, pasted as they are into the loading script of case (b).
_DEFS = '''
def get_x(o):
    CALLS.append(1)
    return o[0] * 2


def label_func(o):
    return o[1]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x):
        return self.lin(x)
'''

_TRAIN = _DATA + _DEFS + '''

def learner(model):
    splits = IndexSplitter(range(30, 40))(items)
    dsets = Datasets(items, [[get_x], [label_func, Categorize()]], splits=splits)
    return Learner(dsets.dataloaders(bs=8), model, path=sys.argv[1])


torch.manual_seed(0)
learn = learner(nn.Linear(3, 2))  # linear: the prediction follows any change of get_x's scale
learn.fit(1, 1e-2)
fn = learn.export("fn.pkl")
cls = learner(Net()).export("cls.pkl")
out = {"fn": str(fn), "cls": str(cls), "want": learn.predict(items[0])[2].tolist(),
       # what the exported model predicts for an input that get_x scales by 3 instead of 2
       "want_x3": learn.predict([items[0][0] * 1.5, "pos"])[2].tolist()}
# (a) the same process (the next cell of a notebook): safe, by reference, no warning
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    new = load_learner(fn)
n = len(CALLS)
out["same_process"] = new.predict(items[0])[2].tolist()
out["same_process_calls_local"] = len(CALLS) > n
out["same_process_warnings"] = [str(w.message) for w in caught]
print(json.dumps(out))
'''

_LOAD = '''
def load(fname, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            new = load_learner(fname, **kw)
        except UnsafeExportError as e:
            return {"refused": str(e)}
    n = len(CALLS)
    return {"probs": new.predict(items[0])[2].tolist(), "calls_local": len(CALLS) > n,
            "warnings": [str(w.message) for w in caught]}


fn, cls = sys.argv[1], sys.argv[2]
'''

# (b) defines the same functions and class; (c) defines none; (d) defines get_x differently.
_APP_SAME = _DATA + _DEFS + _LOAD + '''
print(json.dumps({"fn": load(fn), "cls": load(cls), "cls_allowed": load(cls, allowed=[Net]),
                  "cls_allowed_by_name": load(cls, allowed=["__main__.Net"])}))
'''
_APP_MISSING = _DATA + _LOAD + '''
print(json.dumps({"fn": load(fn), "fn_trusted": load(fn, trusted=True), "cls": load(cls)}))
'''
_APP_DIFFERS = _DATA + _DEFS.replace("return o[0] * 2", "return o[0] * 3") + _LOAD + '''
print(json.dumps({"fn": load(fn)}))
'''


def _script(folder: Path, name: str, code: str, *args: object) -> dict:
    path = folder / name
    path.write_text(code)
    r = subprocess.run([sys.executable, str(path), *map(str, args)], capture_output=True, text=True, timeout=300,
                       cwd=folder)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def _line_of(code: str, text: str) -> int:
    return code.splitlines().index(text) + 1


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("main_refs")
    return folder, _script(folder, "train.py", _TRAIN, folder)


def test_the_exporting_process_loads_its_own_export_safely_by_reference(exported):
    _, out = exported
    assert out["same_process"] == pytest.approx(out["want"])
    assert out["same_process_calls_local"]  # the very get_x of this process, not a copy restored from the file
    assert out["same_process_warnings"] == []


def test_a_script_that_defines_the_same_functions_loads_and_predicts_the_same(exported):
    folder, out = exported
    got = _script(folder, "app_same.py", _APP_SAME, out["fn"], out["cls"])
    assert "refused" not in got["fn"], got["fn"]
    assert got["fn"]["probs"] == pytest.approx(out["want"])
    assert got["fn"]["calls_local"]  # this script's get_x ran: used by reference
    assert got["fn"]["warnings"] == []  # same source: nothing to warn about
    # a class defined in __main__ runs its code while loading: like a class of your own module, it needs allowed=
    msg = got["cls"]["refused"]
    assert "__main__.Net" in msg and "allowed=['__main__.Net']" in msg and "trusted=True" in msg
    assert "probs" in got["cls_allowed"] and got["cls_allowed"]["warnings"] == []
    assert got["cls_allowed_by_name"]["probs"] == pytest.approx(got["cls_allowed"]["probs"])


def test_a_script_without_the_functions_gets_the_refusal_naming_them_and_the_fixes(exported):
    folder, out = exported
    got = _script(folder, "app_missing.py", _APP_MISSING, out["fn"], out["cls"])
    msg = got["fn"]["refused"]
    train = folder / "train.py"
    code = train.read_text()
    # every absent function at once, each with the file and line where the exporting script defined it
    assert f"function get_x (module __main__, {train}:{_line_of(code, 'def get_x(o):')})" in msg
    assert f"function label_func (module __main__, {train}:{_line_of(code, 'def label_func(o):')})" in msg
    assert "before calling load_learner" in msg and "trusted=True" in msg and "runs code from the file" in msg
    assert "class Net (module __main__" in got["cls"]["refused"]
    # trusted=True restores the stored code (by value: its calls go to the restored copy's own list)
    assert got["fn_trusted"]["probs"] == pytest.approx(out["want"])
    assert not got["fn_trusted"]["calls_local"]


def test_a_differing_definition_is_used_with_a_warning_showing_the_difference(exported):
    folder, out = exported
    got = _script(folder, "app_differs.py", _APP_DIFFERS, out["fn"], out["cls"])["fn"]
    assert got["calls_local"]
    assert got["probs"] == pytest.approx(out["want_x3"])  # this script's get_x (x * 3) is the one used
    assert got["probs"] != pytest.approx(out["want"])
    (w,) = got["warnings"]
    app = folder / "app_differs.py"
    assert "function get_x (module __main__, " in w and str(folder / "train.py") in w
    assert f"{app}:{_line_of(app.read_text(), 'def get_x(o):')}" in w
    assert "-    return o[0] * 2" in w and "+    return o[0] * 3" in w


# In-process checks on crafted files: a loading process whose __main__ defines or imports things.
_MAIN_CODE = textwrap.dedent('''
    import os, shutil, subprocess
    from tiers.data import ItemGetter

    MARKER = []

    def label(o):
        return o[1]

    class Boom:
        def __init__(self, *args):
            MARKER.append(args)
''')


@pytest.fixture
def fake_main(monkeypatch):
    """A `__main__` module as a notebook's: real code executed in a fresh module named __main__."""
    mod = types.ModuleType("__main__")
    exec(compile(_MAIN_CODE, "<notebook>", "exec"), mod.__dict__)
    monkeypatch.setitem(sys.modules, "__main__", mod)
    return mod


def _learner(tmp_path, get_y):
    g = torch.Generator().manual_seed(0)
    items = [[x, "pos" if x[0] > 0 else "neg"] for x in torch.randn(20, 3, generator=g)]
    dsets = Datasets(items, [[ItemGetter(0)], [get_y, Categorize()]], splits=IndexSplitter(range(15, 20))(items))
    return Learner(dsets.dataloaders(bs=5), nn.Linear(3, 2), path=tmp_path), items


def _with_payload(tmp_path, payload: bytes, by_value_descs: list[str]) -> Path:
    learn, _ = _learner(tmp_path, ItemGetter(1))
    with zipfile.ZipFile(learn.export("ok.pkl")) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    manifest = json.loads(parts["manifest.json"])
    manifest["learner.pkl"] = hashlib.sha256(payload).hexdigest()
    manifest["by_value"] = by_value_descs
    bad = tmp_path / "crafted.pkl"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("manifest.json", json.dumps(manifest))
        z.writestr("tensors.safetensors", parts["tensors.safetensors"])
        z.writestr("learner.pkl", payload)
    return bad


class _StoredCode:
    # pickles as the call export writes for code stored by value, with a chosen description
    def __init__(self, desc: str, blob: bytes = b"") -> None:
        self.desc, self.blob = desc, blob

    def __reduce__(self):
        return by_value._load_by_value, (self.desc, self.blob, None)


def test_a_notebook_function_round_trips_in_process_as_the_same_object(tmp_path, fake_main):
    learn, items = _learner(tmp_path, fake_main.label)
    assert fake_main.label.__module__ == "__main__"
    new = load_learner(learn.export("nb.pkl"))
    got = new.dls.train.dataset.tfms[1].fs[0]._encm.funcs[0]
    assert got is fake_main.label
    assert new.predict(items[0])[0] == learn.predict(items[0])[0]


@pytest.mark.parametrize("desc", ["function shutil.rmtree (module __main__, <notebook>:1)",  # stdlib file code
                                  "class subprocess.Popen (module __main__, <notebook>:1)",
                                  "function os.system (module __main__, <notebook>:1)",
                                  "function subprocess.Popen (module __main__, <notebook>:1)",  # not a function
                                  "function MARKER.append (module __main__, <notebook>:1)"])
def test_a_main_name_that_leads_to_something_imported_is_judged_where_it_lives(tmp_path, fake_main, desc):
    crafted = _with_payload(tmp_path, pickle.dumps(_StoredCode(desc), protocol=4), [desc])
    with pytest.raises(UnsafeExportError):
        load_learner(crafted)
    # the unpickler refuses it on its own too, whatever the manifest says
    with pytest.raises(UnsafeExportError):
        SafeUnpickler(io.BytesIO(pickle.dumps(_StoredCode(desc), protocol=4)), {}, policy()).load()


def test_an_export_written_before_the_rule_loads_the_same_way(tmp_path, fake_main):
    # earlier exports call `_load_by_value(desc, blob)`, without the source: found by the name in the description
    class OldFormat(_StoredCode):
        def __reduce__(self):
            return by_value._load_by_value, (self.desc, self.blob)

    desc = "function label (module __main__, /old/train.py:5)"
    got = SafeUnpickler(io.BytesIO(pickle.dumps(OldFormat(desc), protocol=4)), {}, policy()).load()
    assert got is fake_main.label
    gone = "function gone (module __main__, /old/train.py:9)"
    with pytest.raises(UnsafeExportError, match=r"function gone \(module __main__, /old/train.py:9\).*before calling"):
        load_learner(_with_payload(tmp_path, pickle.dumps(OldFormat(gone), protocol=4), [gone]))


def test_a_main_name_imported_from_an_allowed_module_resolves_to_it(fake_main):
    desc = "class ItemGetter (module __main__, <notebook>:3)"  # `from tiers.data import ItemGetter` in __main__
    got = SafeUnpickler(io.BytesIO(pickle.dumps(_StoredCode(desc), protocol=4)), {}, policy()).load()
    assert got is ItemGetter


def test_a_main_class_is_never_called_by_a_safe_load_without_allowed(tmp_path, fake_main):
    desc = "class Boom (module __main__, <notebook>:9)"
    for payload, descs in ((pickle.dumps(_StoredCode(desc), protocol=4), [desc]),
                           (b"\x80\x04\x8c\x08__main__\x8c\x04Boom\x93\x8c\x01x\x85R.", []),  # __main__.Boom("x")
                           (b"(c__main__\nBoom\nS'x'\no.", [])):  # the same with the OBJ opcode of protocol 1
        with pytest.raises(UnsafeExportError, match=r"__main__\.Boom.*allowed="):
            load_learner(_with_payload(tmp_path, payload, descs))
        with pytest.raises(UnsafeExportError, match=r"__main__\.Boom"):
            SafeUnpickler(io.BytesIO(payload), {}, policy()).load()
    assert fake_main.MARKER == []


def test_inst_and_obj_opcodes_cannot_call_the_by_value_loader(tmp_path):
    marker = tmp_path / "ran"
    blob = pickle.dumps(_Touch(str(marker)), protocol=4)
    desc = "function gone (module __main__, x.py:1)"
    for payload in (b"(ctiers.train.io.by_value\n_load_by_value\n" + _str(desc) + _bytes(blob) + b"o.",
                    b"(" + _str(desc) + _bytes(blob) + b"itiers.train.io.by_value\n_load_by_value\n."):
        with pytest.raises(UnsafeExportError, match="gone"):
            SafeUnpickler(io.BytesIO(payload), {}, policy()).load()
    assert not marker.exists()


class _Touch:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def _str(s: str) -> bytes:
    return pickle.dumps(s, protocol=3)[2:-1]  # the opcodes pushing `s`, without PROTO and STOP (and no framing)


def _bytes(b: bytes) -> bytes:
    return pickle.dumps(b, protocol=3)[2:-1]


def test_the_description_reads_back():
    assert by_value.named(by_value.describe(_line_of)) == ("function", __name__, "_line_of")
    assert by_value.named(by_value.describe(_Touch)) == ("class", __name__, "_Touch")
    assert by_value.named("function <lambda> (module __main__, ?)").by_name is False
    assert by_value.named("function f.<locals>.g (module __main__, ?)").by_name is False
    assert by_value.named("function get_x (module __main__, /x.py:3)").by_name is True
    assert by_value.named("not a description") is None


def test_the_warning_is_cheap_and_only_when_both_sources_are_known():
    assert by_value.source_diff(None, _line_of) is None
    assert by_value.source_diff(by_value.source_of(_line_of), _line_of) is None
    diff = by_value.source_diff("def _line_of(code, text):\n    return 0\n", _line_of)
    assert diff is not None and "-    return 0" in diff and "+    return code.splitlines()" in diff
    assert by_value.source_of(eval("lambda: 0")) is None  # no source file: no comparison, no warning
