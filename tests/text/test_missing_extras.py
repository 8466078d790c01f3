"""Without the optional extra `tiers-text[sentencepiece]`, tiers.text imports;
`SentencePieceTokenizer` raises `ModuleNotFoundError` at construction naming sentencepiece and `pip install
"tiers-text[sentencepiece]"`. sentencepiece is blocked (`sys.modules[name] = None`) in a fresh interpreter."""

import pytest

CODE = """
from tiers.text import SentencePieceTokenizer

attempt("construct", lambda: SentencePieceTokenizer(vocab_sz=60, cache_dir=sys.argv[1]))
"""


@pytest.mark.slow
def test_sentencepiece_tokenizer_names_the_extra_at_construction(tmp_path, run_without, check_extra):
    result = run_without(("sentencepiece",), CODE, str(tmp_path / "spm"))
    check_extra(result["construct"], "sentencepiece", "SentencePieceTokenizer", "tiers-text", "sentencepiece")
    assert result["loaded"] == [] and not (tmp_path / "spm").exists()
