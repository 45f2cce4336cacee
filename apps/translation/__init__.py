"""Translation app: bidirectional recurrent encoder, attention decoder, beam search, BLEU."""
