"""Diagnostic studies: the claims of the RNN literature measured with the suite's layers."""
