"""AUDIT3 E21b: `decode_spec_tokens` with a rule token after another pending rule (as an early language model
generates: "The movie Xxmaj Xxmaj"): the later rule replaces the pending one, as in fastai, and the rules the
tokenizer nests (`xxwrep 3 xxmaj the`) decode back to the words they came from."""

import pytest

from tiers.text.all import SpacyTokenizer, decode_spec_tokens, tokenize1


@pytest.mark.parametrize("toks, expected", [
    (["xxmaj", "xxmaj", "the"], ["The"]),                       # the audit's case (fastai: ['The'])
    (["the", "movie", "xxmaj", "xxmaj", "xxmaj", "was"], ["the", "movie", "Was"]),
    (["xxup", "xxmaj", "the"], ["The"]),                        # the later case rule wins
    (["xxmaj", "xxup", "the"], ["THE"]),
    (["xxmaj", "xxrep", "3", "!"], ["!!!"]),                     # a repetition replaces a pending case rule
    (["xxrep", "xxmaj", "the"], ["The"]),                       # a repetition without its count is replaced
    (["xxwrep", "xxwrep", "2", "so"], ["so", "so"]),
    (["xxrep", "3", "xxrep", "2", "!"], ["!!"]),                 # a new repetition replaces a pending one
    (["xxwrep", "3", "xxmaj", "the", "cat"], ["The", "The", "The", "cat"]),  # nested by the tokenizer
    (["xxwrep", "2", "xxup", "no"], ["NO", "NO"]),
    (["hi", "xxmaj"], ["hi"]),                                  # a rule with no word after it: dropped
])
def test_rule_after_pending_rule(toks, expected):
    assert decode_spec_tokens(toks) == expected


def test_existing_cases_unchanged():
    toks = ["xxmaj", "hello", "xxup", "you", "xxrep", "4", "!", "xxwrep", "3", "so", "xxrep", "x", "ok"]
    assert decode_spec_tokens(toks) == ["Hello", "YOU", "!!!!", "so", "so", "so", "x", "ok"]
    assert decode_spec_tokens([]) == []
    assert decode_spec_tokens(["xxbos", "plain", "words"]) == ["xxbos", "plain", "words"]


@pytest.mark.parametrize("text, words", [
    ("The The The cat sat", "The The The cat sat"),
    ("You said NO NO NO", "You said NO NO NO"),
    ("Hello WORLD!!!!", "Hello WORLD !!!!"),
    ("wow wow wow wow Big", "wow wow wow wow Big"),
])
def test_decodes_what_the_tokenizer_encodes(text, words):
    toks = tokenize1(text, SpacyTokenizer())
    assert toks[0] == "xxbos"
    assert " ".join(decode_spec_tokens(toks[1:])) == words
