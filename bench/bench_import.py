"""Import cost of the star import a listing starts with: `from tiers.vision.all import *` over `import torch`
(goal: within +0.5 s), and which heavy libraries it loads before they are used (pandas and matplotlib.pyplot are
meant to load on first use of `pd` / `plt`).

Each import runs in a fresh interpreter, alternating torch and tiers runs so a quiet or busy moment of the shared
machine affects both; the best of the runs is kept.

    hatch run bench import          (through run_all.py)
    python bench/bench_import.py    (alone)
"""

from __future__ import annotations

import json
import subprocess
import sys

from _shared import print_table  # noqa: E402

_PROBE = ("import sys, time, json; t = time.perf_counter(); {stmt}; took = time.perf_counter() - t; "
          "print(json.dumps({{'s': took, 'loaded': [m for m in ('pandas', 'matplotlib.pyplot') if m in sys.modules]}}))")


def _import(stmt: str) -> dict | None:
    r = subprocess.run([sys.executable, "-c", _PROBE.format(stmt=stmt)], capture_output=True, text=True)
    if r.returncode:
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> list[dict]:
    repeat = 3 if quick else 7
    torch_runs, ours_runs = [], []
    for _ in range(repeat):
        torch_runs.append(_import("import torch"))
        ours_runs.append(_import("from tiers.vision.all import *"))
    if any(o is None for o in ours_runs) or any(o is None for o in torch_runs):
        return [{"benchmark": "from tiers.vision.all import * over import torch", "ours": "import failed",
                 "baseline": "-", "ratio": "-", "fastai": "-", "goal": "<= +0.5 s over torch", "met": False}]
    torch_s = min(o["s"] for o in torch_runs)
    ours_s = min(o["s"] for o in ours_runs)
    extra = ours_s - torch_s
    loaded = sorted({m for o in ours_runs for m in o["loaded"]})
    return [
        {"benchmark": "from tiers.vision.all import * over import torch (fresh interpreters, best of "
                      f"{repeat})",
         "ours": f"+{extra:.2f} s (total {ours_s:.2f} s)", "baseline": f"import torch {torch_s:.2f} s",
         "ratio": ours_s / torch_s, "fastai": "-", "goal": "<= +0.5 s over torch", "met": extra <= 0.5},
        {"benchmark": "heavy modules loaded by the star import before use (pandas, matplotlib.pyplot)",
         "ours": ", ".join(loaded) or "none", "baseline": "-", "ratio": "-", "fastai": "both",
         "goal": "none (loaded on first use of pd / plt)", "met": not loaded},
    ]


if __name__ == "__main__":
    print_table(run(quick="--quick" in sys.argv))
