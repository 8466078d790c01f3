"""Import-time benchmarks: `import tiers.dispatch` and `import tiers.vision.all` over `import torch`.

Each import runs in a fresh interpreter, best of several runs, so caches of one do not help another.
"""

from __future__ import annotations

import subprocess
import sys

from _shared import print_table  # noqa: E402


def _best_import_s(stmt: str, repeat: int) -> float | None:
    code = f"import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"
    best = None
    for _ in range(repeat):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if r.returncode:
            return None
        took = float(r.stdout.strip().splitlines()[-1])
        best = took if best is None else min(best, took)
    return best


def run(quick: bool = False) -> list[dict]:
    repeat = 3 if quick else 5
    rows = []
    disp = _best_import_s("import tiers.dispatch", repeat)
    rows.append({"benchmark": "import tiers.dispatch", "ours": f"{disp * 1e3:.1f} ms", "baseline": "-",
                 "ratio": "-", "fastai": "-", "goal": "< 30 ms", "met": disp < 0.030})
    torch_s = _best_import_s("import torch", repeat)
    ours = _best_import_s("import tiers.vision.all", repeat)
    fa = _best_import_s("import fastai.vision.all", repeat)
    extra = ours - torch_s if ours is not None else None
    rows.append({
        "benchmark": "import tiers.vision.all, extra over import torch",
        "ours": f"{extra:.2f} s (total {ours:.2f} s)" if extra is not None else "import failed",
        "baseline": f"import torch {torch_s:.2f} s", "ratio": (ours / torch_s) if ours else "-",
        "fastai": f"{fa - torch_s:.2f} s extra (total {fa:.2f} s)" if fa is not None else "fastai not installed",
        "goal": "<= 1.0 s over torch", "met": extra is not None and extra <= 1.0,
    })
    return rows


if __name__ == "__main__":
    print_table(run(quick="--quick" in sys.argv))
