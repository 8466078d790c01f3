"""Importing a library that only an optional extra of a layer brings (`tiers-train[plots]`, `[sklearn]`, ...).

Every layer imports such a library through `require`, inside the function that needs it, so the layer imports
without it and the user who calls the function without it learns which extra to install:

>>> require("json", dist="tiers-train", extra="plots", what="plot_loss").__name__
'json'
"""

import importlib
from types import ModuleType

__all__ = ["MissingExtraError", "require"]


class MissingExtraError(ModuleNotFoundError):
    """A library of an optional extra is not installed. `name` is the missing module, `dist`/`extra` the
    distribution and extra that bring it, `what` the feature that needs it; the message gives the exact fix."""

    def __init__(self, msg: str, *, name: str, dist: str, extra: str, what: str):
        super().__init__(msg, name=name)
        self.dist, self.extra, self.what = dist, extra, what

    def __reduce__(self):
        # keyword-only arguments: rebuild from the fields so the error survives a DataLoader worker or a pickle
        return _rebuild, (self.msg, self.name, self.dist, self.extra, self.what)


def _rebuild(msg: str, name: str, dist: str, extra: str, what: str) -> "MissingExtraError":
    return MissingExtraError(msg, name=name, dist=dist, extra=extra, what=what)


def require(module: str, *, dist: str, extra: str, what: str) -> ModuleType:
    """The module `module` (e.g. `"matplotlib.pyplot"`), imported; `what` (e.g. `"plot_loss"`) needs it and
    `pip install "<dist>[<extra>]"` brings it. A missing library raises `MissingExtraError` (a
    `ModuleNotFoundError` whose `name` is the missing module) naming the library, `what` and that command.
    An installed but broken library re-raises its own `ImportError`, with a note giving the same command.
    Costs one `sys.modules` lookup once the module is loaded."""
    fix = f'pip install "{dist}[{extra}]"'
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        lib = module.split(".")[0]
        # the library, not the submodule asked for: `sys.modules["matplotlib"] = None` reports "matplotlib.pyplot"
        missing = (e.name or lib).split(".")[0]
        via = "" if missing == lib else f" (needed by {lib})"
        raise MissingExtraError(
            f"{what} needs {missing}{via}, which is not installed: it comes with the optional extra "
            f"{dist}[{extra}]. Install it with: {fix}", name=missing, dist=dist, extra=extra, what=what) from e
    except ImportError as e:
        e.add_note(f"{what} needs {module} from the optional extra {dist}[{extra}], installed but not importable; "
                   f"reinstall it with: {fix} --force-reinstall")
        raise
