"""Export of code that has no importable name (lambdas, functions and classes of `__main__`) by value, the safe
load's refusals (all offending globals in one message), and user-module functions under the safe default."""

import importlib
import json
import pickle
import subprocess
import sys
import textwrap
import zipfile

import pytest
import torch
from torch import nn

from tiers.data import Categorize, Datasets, IndexSplitter, ItemGetter
from tiers.train import Learner, UnsafeExportError, load_learner

torch.set_num_threads(1)


def _items(n=60):
    g = torch.Generator().manual_seed(0)
    xs = torch.randn(n, 3, generator=g)
    # lists, not tuples: a function transform maps over a tuple's elements
    return [[x, "pos" if x[0] > 0 else "neg"] for x in xs]


def _learner(tmp_path, get_y=None, model=None):
    items = _items()
    get_y = get_y if get_y is not None else ItemGetter(1)
    dsets = Datasets(items, [[ItemGetter(0)], [get_y, Categorize()]], splits=IndexSplitter(range(50, 60))(items))
    model = model if model is not None else nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    return Learner(dsets.dataloaders(bs=8), model, path=tmp_path), items


def _run(code: str, *args, env=None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=180,
                          env=env, cwd=cwd)


# A script run as __main__: a lambda get_y and a get_x defined in it, both exported by value.
_EXPORTING_SCRIPT = textwrap.dedent("""
    import sys, torch
    from torch import nn
    from tiers.data import Categorize, Datasets, IndexSplitter
    from tiers.train import Learner

    def first_of(o):
        return o[0]

    class ScriptNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2)

        def forward(self, x):
            return self.lin(x) * 2

    g = torch.Generator().manual_seed(0)
    items = [[x, "pos" if x[0] > 0 else "neg"] for x in torch.randn(40, 3, generator=g)]
    dsets = Datasets(items, [[first_of], [lambda o: o[1], Categorize()]], splits=IndexSplitter(range(30, 40))(items))
    torch.manual_seed(0)
    learn = Learner(dsets.dataloaders(bs=8), ScriptNet(), path=sys.argv[1])
    print(learn.export("main.pkl"))
    print(learn.predict(items[0])[2].tolist())
""")

_LOADING_SCRIPT = textwrap.dedent("""
    import sys, json, torch
    from tiers.train import load_learner, UnsafeExportError
    try:
        learn = load_learner(sys.argv[1], trusted=sys.argv[2] == "1")
    except UnsafeExportError as e:
        print("REFUSED", json.dumps(str(e)))
    else:
        g = torch.Generator().manual_seed(0)
        items = [[x, "pos" if x[0] > 0 else "neg"] for x in torch.randn(40, 3, generator=g)]
        print(learn.predict(items[0])[2].tolist())
""")


def test_main_functions_and_lambdas_export_by_value_and_load_trusted_in_a_fresh_process(tmp_path):
    r = _run(_EXPORTING_SCRIPT, tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    fname, want = r.stdout.strip().splitlines()[-2:]
    safe = _run(_LOADING_SCRIPT, fname, 0)
    assert safe.returncode == 0, safe.stderr[-2000:]
    assert safe.stdout.startswith("REFUSED")
    msg = json.loads(safe.stdout.split(" ", 1)[1])
    # one message naming both pieces of code, and what trusted=True means
    assert "first_of" in msg and "<lambda>" in msg and "class ScriptNet" in msg
    assert "trusted=True" in msg and "runs code" in msg
    trusted = _run(_LOADING_SCRIPT, fname, 1)
    assert trusted.returncode == 0, trusted.stderr[-2000:]
    assert json.loads(trusted.stdout.strip().splitlines()[-1]) == pytest.approx(json.loads(want))


def test_in_process_lambda_round_trip(tmp_path):
    learn, items = _learner(tmp_path, get_y=lambda o: o[1])
    f = learn.export("lam.pkl")
    with pytest.raises(UnsafeExportError, match="<lambda>"):
        load_learner(f)
    new = load_learner(f, trusted=True)
    assert torch.equal(new.predict(items[0])[2], learn.predict(items[0])[2])


def test_without_cloudpickle_the_error_names_the_function_and_the_extra(tmp_path):
    code = "import sys; sys.modules['cloudpickle'] = None\n" + _EXPORTING_SCRIPT  # as if it were not installed
    r = _run(code, tmp_path)
    assert r.returncode != 0
    assert "PicklingError" not in r.stderr.splitlines()[-1]
    assert "tiers-train[cloudpickle]" in r.stderr and "first_of" in r.stderr
    assert not (tmp_path / "models").exists() or list((tmp_path / "models").iterdir()) == []  # nothing half-written


_USER_MODULE = textwrap.dedent('''
    import torch
    from torch import nn


    def label(o):
        return o[1]


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2)

        def forward(self, x):
            return self.lin(x)


    class Scale(nn.Module):
        def forward(self, x):
            return x * 2
''')


@pytest.fixture
def user_mod(tmp_path, monkeypatch):
    import importlib

    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "user_mod_for_export.py").write_text(_USER_MODULE)
    monkeypatch.syspath_prepend(str(proj))
    yield importlib.import_module("user_mod_for_export")
    sys.modules.pop("user_mod_for_export", None)


def test_user_module_function_loads_safely_but_classes_need_allowed_all_named_at_once(tmp_path, user_mod):
    learn, items = _learner(tmp_path, get_y=user_mod.label)
    f = learn.export("fn.pkl")
    new = load_learner(f)  # a plain function of the user's own module: referenced by name, never called on load
    assert new.predict(items[0])[0] == learn.predict(items[0])[0]
    # the same module, not imported by the loading process: never imported by the safe load itself
    sys.modules.pop("user_mod_for_export")
    with pytest.raises(UnsafeExportError, match=r"not imported: user_mod_for_export\.label.*`import user_mod_for_export`"):
        load_learner(f)
    user_mod = importlib.import_module("user_mod_for_export")
    assert load_learner(f).predict(items[0])[0] == learn.predict(items[0])[0]
    learn2, _ = _learner(tmp_path, get_y=user_mod.label, model=nn.Sequential(user_mod.Net(), user_mod.Scale()))
    f2 = learn2.export("cls.pkl")
    with pytest.raises(UnsafeExportError) as info:
        load_learner(f2)
    msg = str(info.value)
    assert "user_mod_for_export.Net" in msg and "user_mod_for_export.Scale" in msg  # both, in one message
    assert "allowed=" in msg
    new2 = load_learner(f2, allowed=[user_mod.Net, "user_mod_for_export.Scale"])
    assert torch.equal(new2.predict(items[0])[2], learn2.predict(items[0])[2])


def test_a_users_module_missing_in_the_loading_process_is_named(tmp_path, user_mod):
    learn, _ = _learner(tmp_path, get_y=user_mod.label)
    f = learn.export("fn.pkl")
    code = "import sys; from tiers.train import load_learner; load_learner(sys.argv[1])"
    r = _run(code, f, cwd=tmp_path)  # a fresh process without the project folder on its path
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("ModuleNotFoundError") and "user_mod_for_export.label" in last and "sys.path" in last


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_crafted_exports_are_refused_before_anything_runs(tmp_path):
    learn, _ = _learner(tmp_path)
    f = learn.export("ok.pkl")
    with zipfile.ZipFile(f) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    import hashlib

    for payload in (pickle.dumps(_Evil(), protocol=4), pickle.dumps(_Evil(), protocol=2), pickle.dumps(_Evil(), protocol=0)):
        manifest = json.loads(parts["manifest.json"])
        manifest["learner.pkl"] = hashlib.sha256(payload).hexdigest()
        bad = tmp_path / "bad.pkl"
        with zipfile.ZipFile(bad, "w") as z:
            z.writestr("manifest.json", json.dumps(manifest))
            z.writestr("tensors.safetensors", parts["tensors.safetensors"])
            z.writestr("learner.pkl", payload)
        with pytest.raises(UnsafeExportError, match=r"(posix|os)\.system"):
            load_learner(bad)


def test_a_py_file_planted_next_to_the_export_is_never_imported(tmp_path):
    import hashlib

    learn, _ = _learner(tmp_path)
    f = learn.export("ok.pkl")
    with zipfile.ZipFile(f) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    marker = tmp_path / "ran"
    (tmp_path / "planted_mod.py").write_text(f"open({str(marker)!r}, 'w').close()\ndef f(x):\n    return x\n")
    mod, name = b"planted_mod", b"f"
    payload = b"\x80\x04\x8c" + bytes([len(mod)]) + mod + b"\x8c" + bytes([len(name)]) + name + b"\x93."
    manifest = json.loads(parts["manifest.json"])
    manifest["learner.pkl"] = hashlib.sha256(payload).hexdigest()
    with zipfile.ZipFile(tmp_path / "planted.pkl", "w") as z:
        z.writestr("manifest.json", json.dumps(manifest))
        z.writestr("tensors.safetensors", parts["tensors.safetensors"])
        z.writestr("learner.pkl", payload)
    code = ("import sys\nfrom tiers.train import load_learner, UnsafeExportError\ntry:\n    load_learner(sys.argv[1])\n"
            "except UnsafeExportError as e:\n    print('REFUSED', e)\n")
    r = _run(code, "planted.pkl", cwd=tmp_path)  # the folder of the export is on sys.path ('' for -c)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "REFUSED" in r.stdout and "planted_mod.f" in r.stdout and not marker.exists()
