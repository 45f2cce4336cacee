"""tf.data input pipelines: sources, tokenizers and batching.

Modules (import them directly; this package imports nothing heavy):

- ``procedural``: adding problem, copy task, sign-memory toy, rendered-shapes captions.
- ``tfds_source``: TFDS by name with a fast offline failure and offline preparation.
- ``text_files``: classification folders/files, plain text, parallel corpora.
- ``conll``: CoNLL-2000/2003 and CoNLL-U readers, tag-scheme conversion.
- ``captions``: COCO-format caption JSON plus an image folder.
- ``music``: JSB-chorales-style JSON piano rolls.
- ``tokenizers``: SentencePiece, word and character vocabularies, in-graph tokenizers.
- ``batching``: bucketing, token budgets, Morishita et al. strategies, padding stats.
- ``errors``: ``DataFormatError`` and ``DataUnavailableError``.
"""
