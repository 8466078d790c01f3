"""Star imports of several applications, in either order: one `Normalize`, one `defaults`.

They live here, not in tests/<layer>, because each layer's own environment holds no sibling layers.
"""

import subprocess
import sys
import textwrap

import pytest


@pytest.mark.parametrize("first,second", [("vision", "tabular"), ("tabular", "vision")])
def test_star_imports_in_either_order_give_the_same_normalize(first, second):
    code = textwrap.dedent(f"""
        from tiers.{first}.all import *
        from tiers.{second}.all import *
        import pandas as pd, tiers.data, torch
        assert Normalize is tiers.data.Normalize
        to = TabularPandas(pd.DataFrame({{"a": [0.0, 2.0, 4.0]}}), procs=[Normalize], cont_names="a")
        assert [round(v, 4) for v in to["a"]] == [-1.2247, 0.0, 1.2247], to["a"].tolist()
        n = Normalize.from_stats(*imagenet_stats, cuda=False)
        x = TensorImage(torch.rand(1, 3, 2, 2))
        assert torch.allclose(n.decode(n(x)), x, atol=1e-6)
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_text_star_import_keeps_the_shared_defaults():
    code = (
        "from tiers.vision.all import *\n"
        "from tiers.text.all import *\n"
        "import tiers.dispatch as d\n"
        "assert defaults is d.defaults, 'text replaced the shared defaults'\n"
        "assert defaults.lr == 1e-3 and defaults.callbacks == [] and 1 <= defaults.cpus <= 16\n"
        "assert defaults.text_proc_rules and defaults.text_postproc_rules and 'xxunk' in defaults.text_spec_tok\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
