"""Check that every public function and method of the ten layers carries type annotations.

    python tools/check_annotations.py                 # all layers; exit 1 and a list when something is missing
    python tools/check_annotations.py packages/vision # one layer (or any folders/files)

"Public" means: a function or method whose name has no leading underscore, defined at module level or in a
class defined at module level whose name has no leading underscore, in a module whose path has no component
with a leading underscore. Every parameter but `self`/`cls` needs an annotation, and the function a return
annotation (`-> None` included). mypy (`hatch run typecheck`) then checks the bodies against them.

Exempt on purpose, because their annotations are not documentation but behaviour:
- `encodes`, `decodes` and `setups` (methods, and module-level functions registered with `@SomeTransform`): tiers.pipeline dispatches on their parameter annotation and casts
  the result to their return annotation, so adding one changes what a Transform does;
- functions decorated with `typedispatch` (or a `.register`): the annotations choose the implementation;
- dunder methods (`__init__` excepted: its parameters are the class's public signature);
- a function whose `def` line carries the comment `# untyped: <reason>` (e.g. a classmethod used as a type
  transform, `Transform(PILImage.create)`, where an annotation would pick the dispatch type): the reason is the
  review trail, and `grep -rn "# untyped:" packages` lists every such exception.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEMANTIC_METHODS = frozenset({"encodes", "decodes", "setups"})
DISPATCH_DECORATORS = frozenset({"typedispatch", "register"})


def _decorator_names(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    names = set()
    for d in fn.decorator_list:
        node = d.func if isinstance(d, ast.Call) else d
        if isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.Name):
            names.add(node.id)
    return names


def _exempt(fn: ast.FunctionDef | ast.AsyncFunctionDef, in_class: bool, lines: list[str]) -> bool:
    if "# untyped:" in lines[fn.lineno - 1]:
        return True
    name = fn.name
    if name.startswith("__") and name.endswith("__"):
        return name != "__init__"
    if name.startswith("_"):
        return True
    if name in SEMANTIC_METHODS and (in_class or fn.decorator_list):
        return True
    return bool(_decorator_names(fn) & DISPATCH_DECORATORS)


def _missing(fn: ast.FunctionDef | ast.AsyncFunctionDef, in_class: bool) -> list[str]:
    a = fn.args
    params = [*a.posonlyargs, *a.args, *a.kwonlyargs]
    is_static = "staticmethod" in _decorator_names(fn)
    if in_class and params and not is_static and params[0].arg in ("self", "cls", "mcs", "metacls"):
        params = params[1:]
    out = [p.arg for p in params if p.annotation is None]
    out += [f"*{v.arg}" for v in (a.vararg, a.kwarg) if v is not None and v.annotation is None]
    if fn.returns is None and fn.name != "__init__":
        out.append("return")
    return out


def _public_module(path: Path) -> bool:
    parts = path.parts[path.parts.index("src") + 1 :]
    return not any(p.startswith("_") and p != "__init__.py" for p in parts)


def problems(path: Path) -> Iterator[str]:
    """Yield `file:line name: missing ...` for each public function of `path` without full annotations."""
    if not _public_module(path):
        return
    text = path.read_text(encoding="utf-8")
    tree, lines = ast.parse(text, filename=str(path)), text.splitlines()
    scopes: list[tuple[list[ast.stmt], bool]] = [(tree.body, False)]
    scopes += [(n.body, True) for n in tree.body if isinstance(n, ast.ClassDef) and not n.name.startswith("_")]
    for body, in_class in scopes:
        for fn in body:
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and not _exempt(fn, in_class, lines):
                missing = _missing(fn, in_class)
                if missing:
                    yield f"{path.relative_to(ROOT)}:{fn.lineno} {fn.name}: missing {', '.join(missing)}"


def main(argv: list[str]) -> int:
    targets = [Path(a).resolve() for a in argv] or [ROOT / "packages"]
    files = sorted({f for t in targets for f in ([t] if t.is_file() else t.rglob("*.py")) if "src" in f.parts})
    found = [p for f in files for p in problems(f)]
    for p in found:
        print(p)
    if found:
        print(f"{len(found)} public functions without full annotations (see tools/check_annotations.py)")
        return 1
    print(f"annotations: {len(files)} modules, every public function annotated")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
