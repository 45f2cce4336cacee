"""IMDB sentiment classification: python -m apps.sentiment --help."""
