"""Run each layer's tests in its own hatch environment, holding only that layer and the layers below.

    python tools/per_layer.py              every layer, bottom first
    python tools/per_layer.py data train   just these

Before the tests, each environment is checked: every layer of the chain imports, and no layer
outside it is importable. So a test that leans on a higher layer fails here even when the full
suite (where everything is installed) passes.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from layers import LAYERS, chain  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent



def run_layer(layer: str, pytest_args: list[str]) -> tuple[int, float]:
    """Create (if needed) and use `layer-<layer>`: isolation probe, then `pytest tests/<layer>`."""
    start = time.perf_counter()
    inside = chain(layer)
    outside = [name for name in LAYERS if name not in inside]
    env = f"layer-{layer}"
    rc = subprocess.call(["hatch", "run", f"{env}:python", "tools/check_isolation.py", ",".join(inside), ",".join(outside)], cwd=ROOT)
    if rc == 0 and any((ROOT / "tests" / layer).glob("test_*.py")):
        rc = subprocess.call(["hatch", "run", f"{env}:test", *pytest_args], cwd=ROOT)
    return rc, time.perf_counter() - start


def main(argv: list[str]) -> int:
    layers = [a for a in argv if not a.startswith("-")] or LAYERS
    pytest_args = [a for a in argv if a.startswith("-")] or ["-q", "-p", "no:cacheprovider"]
    unknown = [name for name in layers if name not in LAYERS]
    if unknown:
        print(f"unknown layer(s) {unknown}; choose from {LAYERS}", file=sys.stderr)
        return 2
    results = {}
    for layer in layers:
        print(f"\n=== tests/{layer} in layer-{layer} (holds: {', '.join(chain(layer))}) ===", flush=True)
        results[layer] = run_layer(layer, pytest_args)
    print("\nper-layer summary:")
    for layer, (rc, secs) in results.items():
        print(f"  {layer:<9} {'ok' if rc == 0 else 'FAILED'}  {secs:6.1f} s")
    return max(rc for rc, _ in results.values())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
