"""Run every benchmark in bench/ and write bench/RESULTS.md.

    hatch run bench            (all benchmarks, in the bench environment that has fastai 2.8.12)
    hatch run bench --quick    (shorter runs)
    hatch run bench data optim (only bench_data.py and bench_optim.py)

Each `bench_<name>.py` exposes `run(quick=False) -> list[dict]` with the keys of COLUMNS. Every
figure is a ratio measured side by side in one process, because these machines are noisy. Each bench file runs in
a fresh interpreter, as it does when run alone: one file's leftovers (a 1M-row frame's heap, loaded libraries,
threads) would otherwise change the next one's figures (forking tokenizer workers from a bigger process, say).
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _shared import COLUMNS  # noqa: E402


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    # Registered under its name so pickle finds the module's functions by reference (multiprocessing pools in a
    # bench send them to workers; an unregistered module's functions "are not the same object" when looked up).
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


_ROWS = "BENCH-ROWS-JSON:"  # marks the line of the child's stdout that carries its rows


def _run_isolated(path: Path, quick: bool) -> list[dict]:
    "Run `path`'s `run(quick)` in a fresh interpreter (its output passes through) and return its rows."
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(path)] + (["--quick"] if quick else [])
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    rows = None
    for line in proc.stdout.splitlines():
        if line.startswith(_ROWS):
            rows = json.loads(line[len(_ROWS):])
        else:
            print(line, flush=True)
    if proc.returncode or rows is None:
        raise RuntimeError(f"{path.name} exited with status {proc.returncode} without its rows (traceback above)")
    return rows


def _child(path: Path, quick: bool) -> None:
    rows = _load(path).run(quick=quick)
    print(_ROWS + json.dumps(rows, default=str), flush=True)


def _fmt(value) -> str:
    if isinstance(value, bool):
        return "met" if value else "NOT met"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value).replace("|", "/").replace("\n", " ")


def machine() -> str:
    import torch

    return (f"{platform.node() or 'host'}: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, torch {torch.__version__}")


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    names = [a for a in argv if not a.startswith("-")]
    files = sorted(HERE.glob("bench_*.py"))
    if names:
        files = [f for f in files if f.stem.removeprefix("bench_") in names]
    rows, failed = [], []
    for f in files:
        print(f"== {f.name} ==", flush=True)
        start = time.perf_counter()
        try:
            got = _run_isolated(f, quick)
        except Exception:
            failed.append(f.name)
            traceback.print_exc()
            rows.append({"benchmark": f"{f.stem}: FAILED to run", "ours": "-", "baseline": "-", "ratio": "-",
                         "fastai": "-", "goal": "-", "met": False})
            continue
        for row in got:
            print("   " + "  ".join(f"{k}={_fmt(row.get(k, ''))}" for k in COLUMNS), flush=True)
        rows.extend(got)
        print(f"   ({time.perf_counter() - start:.1f} s)")
    lines = [
        "# Benchmark results", "",
        f"- date: {_dt.datetime.now().isoformat(timespec='minutes')}",
        f"- machine: {machine()}",
        f"- command: `hatch run bench{' ' + ' '.join(argv) if argv else ''}` (runs `python bench/run_all.py` in the bench environment)",
        "- ratio: ours / baseline, measured side by side in one process (lower is better unless the goal says otherwise)",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(_fmt(row.get(k, "")) for k in COLUMNS) + " |" for row in rows]
    met = sum(1 for r in rows if r.get("met") is True)
    lines += ["", f"{met} of {len(rows)} goals met."]
    (HERE / "RESULTS.md").write_text("\n".join(lines) + "\n")
    print(f"\nwrote {HERE / 'RESULTS.md'}: {met} of {len(rows)} goals met")
    return 1 if failed else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(Path(sys.argv[2]), "--quick" in sys.argv)
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
