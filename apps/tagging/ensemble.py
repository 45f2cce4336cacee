"""Ensembles of trained taggers: a log-linear pool of their tag-path distributions.

    python -m apps.tagging ensemble --members RUN_A RUN_B ... --run-dir ENSEMBLE
    python -m apps.tagging evaluate|predict|export --run-dir ENSEMBLE

Each member keeps its own vocabularies, featurizer and model (words, characters, cells,
CRF or softmax decoders may differ); they must share the tag set. The ensemble tags a
sentence with the path that maximises the mean of the members' log-probabilities,

    y* = argmax_y (1/M) sum_m log p_m(y | x),

the mode of the normalised geometric mean of their path distributions. Each log p_m is a
path score (unary + transition scores, `model.tag_scores`) minus a per-sentence constant,
so y* is the Viterbi path of the mean unary and mean transition scores: exact, not a
vote over tokens, and it respects transitions every member forbids. With `--decoding
posterior` the same pooled distribution is decoded for the most expected correct tags
(its forward-backward marginals; `layers.crf.crf_posterior_decode`) instead of its most
probable path. The run directory is described in apps/common/ensemble.py.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from apps.common.serving import ServingOptions
from apps.tagging.export import TaggerModule, TaggingSignatures
from apps.tagging.model import decode_scores


class EnsembleTaggerModule(TaggingSignatures):
    """The signatures of `TaggerModule` for the log-linear pool of its members."""

    def __init__(
        self, members: list[TaggerModule], decoding: str = "viterbi", options: ServingOptions | None = None
    ):
        super().__init__(name="tagger_ensemble")
        if not members:
            raise ValueError("an ensemble needs at least one member")
        tags = [member.tag_names.numpy().tolist() for member in members]
        for index, member_tags in enumerate(tags[1:], start=2):
            if member_tags != tags[0]:
                raise ValueError(
                    f"ensemble member {index} tags with {len(member_tags)} tags "
                    f"{[t.decode() for t in member_tags]}, member 1 with {[t.decode() for t in tags[0]]}: "
                    "members must share the tag set (same data and tag scheme)"
                )
        self.members = list(members)
        self.tag_names = members[0].tag_names
        self.decoding = decoding
        self.options = options or ServingOptions.plain()

    def _tag_ids(self, tokens: tf.RaggedTensor) -> tf.Tensor:
        scores = [member.scores(tokens) for member in self.members]
        unary, transitions, start, end = (tf.add_n(list(parts)) / len(scores) for parts in zip(*scores))
        mask = tf.sequence_mask(tokens.row_lengths(), tf.shape(unary)[1])
        return decode_scores((unary, transitions, start, end), mask, self.decoding)


def tag_sentences(module: TaggingSignatures, sentences: list[list[str]], batch_size: int) -> list[list[str]]:
    """`module.tag` over tokenised sentences in batches of similar length; the tags come
    back in the order of `sentences`."""
    order = np.argsort([len(sentence) for sentence in sentences], kind="stable")
    tagged: list[list[str]] = [[] for _ in sentences]
    for start in range(0, len(sentences), batch_size):
        index = order[start : start + batch_size]
        batch = tf.ragged.constant([sentences[i] for i in index], dtype=tf.string, ragged_rank=1)
        for i, row in zip(index, module.tag(batch)["tags"].to_list()):
            tagged[i] = [tag.decode("utf-8") for tag in row]
    return tagged
