"""tiers.text: Text: tokenization rules, spaCy and SentencePiece tokenizers, AWD-LSTM language models and ULMFiT classifiers.

>>> from tiers.text import TextDataLoaders, language_model_learner, text_classifier_learner, AWD_LSTM
"""

__version__ = "0.1.0"

from tiers.text.awdlstm import (
    AWD_LSTM,
    EmbeddingDropout,
    RNNDropout,
    WeightDropout,
    awd_lstm_clas_config,
    awd_lstm_clas_split,
    awd_lstm_lm_config,
    awd_lstm_lm_split,
    dropout_mask,
)
from tiers.text.block import TextBlock, TextDataLoaders, show_batch, show_results
from tiers.text.callbacks import ModelResetter, RNNCallback, RNNRegularizer, rnn_cbs
from tiers.text.learner import (
    LMLearner,
    TextLearner,
    clean_raw_keys,
    decode_spec_tokens,
    language_model_learner,
    load_ignore_keys,
    match_embeds,
    text_classifier_learner,
)
from tiers.text.loaders import (
    LMDataLoader,
    Pad_Chunk,
    Pad_Input,
    SortedDL,
    pad_chunk,
    pad_input,
    pad_input_chunk,
)
from tiers.text.models import (
    LinearDecoder,
    PoolingLinearClassifier,
    SentenceEncoder,
    SequentialRNN,
    get_language_model,
    get_text_classifier,
    masked_concat_pool,
    model_meta,
)
from tiers.text.parallel import (
    MissingTextError,
    fn_counter_pkl,
    fn_lengths_pkl,
    load_tokenized_csv,
    missing_texts,
    parallel_tokenize,
    tokenize_csv,
    tokenize_df,
    tokenize_files,
    tokenize_folder,
    tokenize_texts,
)
from tiers.text.rules import (
    BOS,
    EOS,
    FLD,
    PAD,
    TK_MAJ,
    TK_REP,
    TK_UP,
    TK_WREP,
    UNK,
    defaults,
    fix_html,
    lowercase,
    replace_all_caps,
    replace_maj,
    replace_rep,
    replace_space,
    replace_wrep,
    rm_useless_spaces,
    spec_add_spaces,
    text_postproc_rules,
    text_proc_rules,
    text_spec_tok,
)
from tiers.text.samples import make_imdb_df, make_imdb_folder, make_imdb_sample, make_texts
from tiers.text.tokenizers import (
    BaseTokenizer,
    SentencePieceTokenizer,
    SpacyTokenizer,
    SubwordTokenizer,
    TokenizeWithRules,
    WordTokenizer,
    as_rules,
    eu_langs,
    tokenize1,
)
from tiers.text.transforms import LMTensorText, Numericalize, Tokenizer, make_vocab, reverse_text

__all__ = [
    # rules and special tokens
    "UNK", "PAD", "BOS", "EOS", "FLD", "TK_REP", "TK_WREP", "TK_UP", "TK_MAJ", "text_spec_tok", "defaults",
    "fix_html", "replace_rep", "replace_wrep", "spec_add_spaces", "rm_useless_spaces", "replace_all_caps",
    "replace_maj", "lowercase", "replace_space", "text_proc_rules", "text_postproc_rules",
    # tokenizers and parallel tokenization
    "BaseTokenizer", "SpacyTokenizer", "WordTokenizer", "SentencePieceTokenizer", "SubwordTokenizer",
    "TokenizeWithRules", "tokenize1", "eu_langs", "parallel_tokenize", "tokenize_texts", "tokenize_df",
    "tokenize_csv", "load_tokenized_csv", "tokenize_files", "tokenize_folder", "fn_counter_pkl", "fn_lengths_pkl",
    "as_rules", "missing_texts", "MissingTextError",
    # transforms and data
    "Tokenizer", "Numericalize", "make_vocab", "LMTensorText", "reverse_text", "pad_input", "pad_chunk",
    "pad_input_chunk", "Pad_Input", "Pad_Chunk", "LMDataLoader", "SortedDL", "TextBlock", "TextDataLoaders",
    "show_batch", "show_results",
    # models
    "dropout_mask", "RNNDropout", "WeightDropout", "EmbeddingDropout", "AWD_LSTM", "awd_lstm_lm_config",
    "awd_lstm_clas_config", "awd_lstm_lm_split", "awd_lstm_clas_split", "LinearDecoder", "SequentialRNN",
    "get_language_model", "SentenceEncoder", "masked_concat_pool", "PoolingLinearClassifier", "get_text_classifier",
    "model_meta",
    # learners and callbacks
    "ModelResetter", "RNNCallback", "RNNRegularizer", "rnn_cbs", "TextLearner", "LMLearner", "language_model_learner",
    "text_classifier_learner", "decode_spec_tokens", "match_embeds", "load_ignore_keys", "clean_raw_keys",
    # sample data
    "make_texts", "make_imdb_df", "make_imdb_sample", "make_imdb_folder",
]
