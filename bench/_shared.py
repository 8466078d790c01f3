"""Helpers every benchmark file shares: the result columns, a printed table, and fastai measured in a child.

A `bench_<name>.py` runs alone (`hatch run bench:python bench/bench_<name>.py`) or through `run_all.py`;
either way this folder is on `sys.path`, so `from _shared import ...` works.
"""

from __future__ import annotations

import json
import subprocess
import sys

COLUMNS = ["benchmark", "ours", "baseline", "ratio", "fastai", "goal", "met"]


def print_table(rows: list[dict]) -> None:
    """Print benchmark rows as an aligned table (floats to three significant places)."""
    cells = [{c: (f"{r.get(c, ''):.3g}" if isinstance(r.get(c), float) else str(r.get(c, ""))) for c in COLUMNS}
             for r in rows]
    widths = {c: max(len(c), *(len(r[c]) for r in cells)) for c in COLUMNS}
    print(" | ".join(c.ljust(widths[c]) for c in COLUMNS))
    print("-+-".join("-" * widths[c] for c in COLUMNS))
    for r in cells:
        print(" | ".join(r[c].ljust(widths[c]) for c in COLUMNS))


def fastai_in_child(bench_file: str, quick: bool, timeout: int = 300) -> dict:
    """Run `bench_file --fastai-child` in a fresh interpreter and return the JSON dict it prints last ({} on any
    failure or without fastai). Importing fastai patches torch, which must never touch the measuring process."""
    try:
        out = subprocess.run([sys.executable, bench_file, "--fastai-child"] + (["--quick"] if quick else []),
                             capture_output=True, text=True, timeout=timeout)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except Exception:
        return {}
