"""Shared paths for the packaging tests (they read the repository, not an installed copy)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
