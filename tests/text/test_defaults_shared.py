"""Text's settings live on the one library-wide `defaults`, so no star import hides `defaults.lr`."""

import subprocess
import sys


def test_text_star_import_keeps_the_shared_defaults():
    code = (
        "from tiers.vision.all import *\n"
        "from tiers.text.all import *\n"
        "import tiers.dispatch as d\n"
        "assert defaults is d.defaults, 'text replaced the shared defaults'\n"
        "assert defaults.lr == 1e-3 and defaults.callbacks == [] and 1 <= defaults.cpus <= 16\n"
        "assert defaults.text_proc_rules and defaults.text_postproc_rules and 'xxunk' in defaults.text_spec_tok\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_changing_text_rules_on_defaults_changes_new_tokenizers():
    from tiers.dispatch import defaults
    from tiers.text import Tokenizer, lowercase

    old = defaults.text_proc_rules
    try:
        defaults.text_proc_rules = [lowercase]
        tok = Tokenizer.from_df("text")
        assert tok.rules == [lowercase]
    finally:
        defaults.text_proc_rules = old
