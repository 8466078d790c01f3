"""The versioning model of tiers, as code: versions, caps, the tiers-* specifiers and the meta pins.

Each layer has its OWN version (semantic versioning; below 1.0 the minor number is the breaking one).
A layer declares every tiers layer it uses as `tiers-X>=FLOOR,<CAP`:

- FLOOR is the oldest version of X the layer is tested with (CI's minimum-version job installs exactly it);
- CAP is X's next breaking version after FLOOR: `<2` for 1.4.0, `<0.3` for 0.2.1.

So a released wheel can never be combined with a breaking release of a layer below it that it was not
tested against. The meta distribution `tiers` pins every layer with `==` at the set tested together.
`tools/release.py` keeps all of this true in one step (see its docstring).
"""

from __future__ import annotations

import re
from pathlib import Path

from layers import LAYERS, ROOT

_VERSION_RE = re.compile(r'^__version__\s*=\s*"(\d+)\.(\d+)\.(\d+)"', re.M)
# A tiers-* requirement written by this model: name, optional extras, floor, cap.
SPEC_RE = re.compile(r'"tiers-(?P<name>[a-z]+)(?P<extras>\[[a-z,\- ]+\])?>=(?P<floor>\d+\.\d+\.\d+),<(?P<cap>[\d.]+)"')
_META_PIN_RE = re.compile(r'"tiers-(?P<name>[a-z]+)(?P<extras>\[[a-z,\- ]+\])?==(?P<version>\d+\.\d+\.\d+)"')
_META_VERSION_RE = re.compile(r'^version = "(\d+\.\d+\.\d+)"', re.M)

Version = tuple[int, int, int]


def parse(text: str) -> Version:
    """`"1.2.3"` -> `(1, 2, 3)`."""
    parts = text.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"{text!r} is not a version of the form MAJOR.MINOR.PATCH")
    return int(parts[0]), int(parts[1]), int(parts[2])


def fmt(v: Version) -> str:
    return ".".join(map(str, v))


def cap(v: Version) -> str:
    """The next breaking version after `v`, as written in an upper bound: `<2` for 1.x, `<0.3` for 0.2.x."""
    return str(v[0] + 1) if v[0] >= 1 else f"0.{v[1] + 1}"


def cap_version(c: str) -> Version:
    parts = [int(p) for p in c.split(".")]
    return (*parts, *[0] * (3 - len(parts)))  # type: ignore[return-value]


def is_breaking(old: Version, new: Version) -> bool:
    """Whether going from `old` to `new` may break users (a new major; below 1.0, a new minor)."""
    return new[0] > old[0] or (old[0] == 0 and new[:2] > old[:2])


def bumped(v: Version, part: str) -> Version:
    """`v` with `part` (major, minor, patch or "breaking": the next breaking one) increased."""
    if part == "breaking":
        part = "major" if v[0] >= 1 else "minor"
    if part == "major":
        return v[0] + 1, 0, 0
    if part == "minor":
        return v[0], v[1] + 1, 0
    if part == "patch":
        return v[0], v[1], v[2] + 1
    raise ValueError(f"bump part must be major, minor or patch, not {part!r}")


def spec(floor: Version) -> str:
    """The specifier a dependent writes for a layer whose oldest tested version is `floor`."""
    return f">={fmt(floor)},<{cap(floor)}"


def satisfies(v: Version, floor: Version, cap_text: str) -> bool:
    return floor <= v < cap_version(cap_text)


# -- files -------------------------------------------------------------------------------------------------


def pyproject(name: str, root: Path = ROOT) -> Path:
    return root / "packages" / name / "pyproject.toml"


def version_file(layer: str, root: Path = ROOT) -> Path:
    return root / "packages" / layer / "src" / "tiers" / layer / "__init__.py"


def read_version(layer: str, root: Path = ROOT) -> str:
    """The version a layer's `__init__.py` declares (or, for "tiers", the meta distribution's)."""
    if layer == "tiers":
        m = _META_VERSION_RE.search(pyproject("tiers", root).read_text())
        if not m:
            raise SystemExit(f'no version = "X.Y.Z" line in {pyproject("tiers", root)}')
        return m.group(1)
    m = _VERSION_RE.search(version_file(layer, root).read_text())
    if not m:
        raise SystemExit(f'no __version__ = "X.Y.Z" line in {version_file(layer, root)}')
    return ".".join(m.groups())


def write_version(layer: str, new: str, root: Path = ROOT) -> None:
    if layer == "tiers":
        p = pyproject("tiers", root)
        p.write_text(_META_VERSION_RE.sub(f'version = "{new}"', p.read_text(), count=1))
    else:
        vf = version_file(layer, root)
        vf.write_text(_VERSION_RE.sub(f'__version__ = "{new}"', vf.read_text(), count=1))


def tiers_specs(name: str, root: Path = ROOT, required_only: bool = False) -> list[dict]:
    """Every tiers-* requirement of a layer's pyproject (dependencies and, unless `required_only`, optional
    extras): name, extras, floor, cap."""
    text = pyproject(name, root).read_text()
    if required_only:
        text = text.split("[project.optional-dependencies]")[0]
    return [m.groupdict() for m in SPEC_RE.finditer(text)]


def rewrite_spec(name: str, dep: str, floor: Version, root: Path = ROOT) -> bool:
    """Set `tiers-<dep>>=floor,<cap>` everywhere `name`'s pyproject requires `dep`; True if anything changed."""
    p = pyproject(name, root)
    text = p.read_text()

    def sub(m: re.Match) -> str:
        if m.group("name") != dep:
            return m.group(0)
        return f'"tiers-{dep}{m.group("extras") or ""}{spec(floor)}"'

    new = SPEC_RE.sub(sub, text)
    if new != text:
        p.write_text(new)
    return new != text


def meta_pins(root: Path = ROOT) -> dict[str, str]:
    return {m["name"]: m["version"] for m in _META_PIN_RE.finditer(pyproject("tiers", root).read_text())}


def write_meta_pins(versions: dict[str, str], root: Path = ROOT) -> None:
    p = pyproject("tiers", root)
    p.write_text(_META_PIN_RE.sub(lambda m: f'"tiers-{m["name"]}{m["extras"] or ""}=={versions[m["name"]]}"',
                                 p.read_text()))


def inconsistencies(versions: dict[str, str], root: Path = ROOT) -> list[str]:
    """Where the set `versions` (layer -> version) breaks a layer's own tiers-* specifiers: a set that pip could
    not install together, or one never tested together."""
    problems = []
    for layer in LAYERS:
        for s in tiers_specs(layer, root):
            v = versions.get(s["name"])
            if v is not None and not satisfies(parse(v), parse(s["floor"]), s["cap"]):
                problems.append(f"tiers-{layer} {versions[layer]} requires tiers-{s['name']}>={s['floor']},"
                                f"<{s['cap']}, not {v}")
    return problems
