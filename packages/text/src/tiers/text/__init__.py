"""tiers.text: Text: tokenization rules, spaCy and SentencePiece tokenizers, AWD-LSTM language models and ULMFiT classifiers."""

__version__ = "0.1.0"
