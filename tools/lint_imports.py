"""Run import-linter's contracts (root pyproject.toml) with this interpreter.

`python -m importlinter` does not exist, and the `lint-imports` script may belong to another
interpreter than the environment that has tiers installed; this runs the same command in-process.
"""

import sys

from importlinter.cli import lint_imports_command

if __name__ == "__main__":
    sys.exit(lint_imports_command(["--config", "pyproject.toml", "--no-cache", *sys.argv[1:]]))
