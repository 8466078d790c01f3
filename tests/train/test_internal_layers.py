"""The layout of tiers.train shows its architecture: the parts import each other one way only (module level)."""

import ast
import pathlib

import tiers.train

# What each part may import from the rest of tiers.train (besides itself).
ALLOWED = {
    "events": set(),
    "state": set(),
    "metrics": set(),
    "nn": set(),
    "checks": {"events"},  # argument and loss checks: the schedules (callbacks) and the Learner use them
    "callbacks": {"events", "state", "metrics", "nn", "checks"},
    "io": {"events", "state", "metrics", "nn", "callbacks"},
    "learner": {"events", "state", "metrics", "nn", "checks", "callbacks", "io", "predict", "plain_torch"},
    "predict": {"events", "state", "metrics", "nn", "callbacks", "plain_torch"},
    "interpret": {"events", "state", "metrics", "nn", "callbacks", "io", "learner", "predict", "plain_torch"},
}


def _part(module: str) -> str:
    return module.split(".")[2]


def test_parts_import_each_other_one_way():
    root = pathlib.Path(tiers.train.__file__).parent
    bad = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).with_suffix("")
        if rel.parts[0] in ("__init__", "all") or rel.name == "__init__":
            continue
        part = rel.parts[0]
        if part not in ALLOWED:
            continue  # a module this test does not know yet: nothing to check against
        for node in ast.parse(path.read_text()).body:  # module level: what importing the module pulls in
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tiers.train."):
                target = _part(node.module)
                if target != part and target not in ALLOWED[part]:
                    bad.append(f"{'/'.join(rel.parts)}.py imports {node.module}")
    assert not bad, bad
