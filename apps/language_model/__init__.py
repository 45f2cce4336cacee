"""Character, word and SentencePiece RNN language models (truncated BPTT, sampling, perplexity)."""
