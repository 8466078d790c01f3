"""Exit non-zero unless exactly the given tiers layers are importable.

    python tools/check_isolation.py INSIDE,LAYERS OUTSIDE,LAYERS
"""

import importlib.util
import sys

inside = [name for name in sys.argv[1].split(",") if name]
outside = [name for name in (sys.argv[2] if len(sys.argv) > 2 else "").split(",") if name]
missing = [name for name in inside if importlib.util.find_spec(f"tiers.{name}") is None]
leaked = [name for name in outside if importlib.util.find_spec(f"tiers.{name}") is not None]
if missing or leaked:
    sys.exit(f"layer environment is wrong: missing {missing}; importable but should not be {leaked}")
