"""Sequence tagging (NER, chunking, POS) with BiLSTM-CRF and character features."""
