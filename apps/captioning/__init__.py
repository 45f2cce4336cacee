"""Captioning app: CNN encoder, Show-Tell and Show-Attend-Tell decoders, beam search, COCO metrics."""
