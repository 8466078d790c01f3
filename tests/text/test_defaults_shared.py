"""Text's settings live on the one library-wide `defaults`, so no star import hides `defaults.lr`."""


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
