"""The SavedModel of a trained tagger: token strings in, tag strings out, all in the graph.

Signatures (TF Serving):
    serving_default(tokens: string [batch, max_tokens], right-padded with "")
        -> tags: string [batch, max_tokens] ("" at padding), tag_ids: int32 [batch,
           max_tokens] (0 at padding), lengths: int32 [batch] (a row of "" is empty)
    tag_flat(token_values: string [n], row_lengths: int64 [batch])
        -> tag_values: string [n] (the ragged batch as values + row lengths)
Python callers also get `tag(tokens: tf.RaggedTensor [batch, (tokens)]) -> {"tags": ragged}`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from apps.common.serving import ServingOptions, by_length, xla_loops
from apps.tagging.data import Featurizer
from apps.tagging.model import predict_tag_ids, tag_scores


class TaggingSignatures(tf.Module):
    """The serving signatures of a tagger over `_tag_ids(tokens)` and `tag_names`, with
    the serving levers `options` (`apps.common.serving`; plain unless set)."""

    tag_names: tf.Tensor
    options: ServingOptions = ServingOptions.plain()

    def _tag_ids(self, tokens: tf.RaggedTensor) -> tf.Tensor:
        """Best tag ids [B, max length] of non-empty ragged sentences."""
        raise NotImplementedError

    def _tag_ragged(self, tokens: tf.RaggedTensor, width=None) -> dict[str, tf.Tensor]:
        """Tags, tag ids and lengths of ragged sentences; the dense outputs are `width`
        wide (default: the longest sentence)."""
        lengths = tf.cast(tokens.row_lengths(), tf.int32)
        batch = tf.shape(lengths)[0]
        longest = tf.reduce_max(tf.concat([lengths, [0]], axis=0))

        def tag_ids():
            if not self.options.group_by_length:
                return self._tag_ids(tokens)

            def group(inputs):
                ids = self._tag_ids(inputs["tokens"])
                return {"ids": tf.pad(ids, [[0, 0], [0, longest - tf.shape(ids)[1]]])}

            return by_length(group, {"tokens": tokens}, lengths, {"ids": tf.TensorSpec([None], tf.int32)})["ids"]

        # An empty batch or only empty sentences: nothing to run the model on.
        ids = tf.cond(longest > 0, tag_ids, lambda: tf.zeros([batch, 0], tf.int32))
        if width is not None:
            ids = tf.pad(ids, [[0, 0], [0, width - tf.shape(ids)[1]]])
        mask = tf.sequence_mask(lengths, tf.shape(ids)[1])
        names = tf.where(mask, tf.gather(self.tag_names, ids), "")
        return {"tag_ids": tf.where(mask, ids, 0), "tags": names, "lengths": lengths}

    @tf.function(input_signature=[tf.RaggedTensorSpec([None, None], tf.string, ragged_rank=1)])
    def tag(self, tokens):
        output = self._tag_ragged(tokens)
        return {"tags": tf.RaggedTensor.from_tensor(output["tags"], lengths=output["lengths"])}

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.string, name="tokens")])
    def serve(self, tokens):
        # Each row ends after its last non-empty token (right padding with "").
        positions = tf.range(1, tf.shape(tokens)[1] + 1)[None, :]
        lengths = tf.maximum(tf.reduce_max(tf.where(tf.not_equal(tokens, ""), positions, 0), axis=1), 0)
        return self._tag_ragged(tf.RaggedTensor.from_tensor(tokens, lengths=lengths), tf.shape(tokens)[1])

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="token_values"),
            tf.TensorSpec([None], tf.int64, name="row_lengths"),
        ]
    )
    def tag_flat(self, token_values, row_lengths):
        output = self._tag_ragged(tf.RaggedTensor.from_row_lengths(token_values, row_lengths))
        ragged = tf.RaggedTensor.from_tensor(output["tags"], lengths=output["lengths"])
        return {"tag_values": ragged.flat_values}

    def signatures(self) -> dict:
        return {"serving_default": self.serve, "tag_flat": self.tag_flat}


class TaggerModule(TaggingSignatures):
    """Featurizer + model + tag names, exportable with `tf.saved_model.save`; `decoding`
    as `TaggingConfig.decoding`; `options` the serving levers."""

    def __init__(
        self,
        featurizer: Featurizer,
        model: keras.Model,
        tags: list[str],
        decoding: str = "viterbi",
        options: ServingOptions | None = None,
    ):
        super().__init__(name="tagger")
        self.featurizer = featurizer
        self.model = model
        self.tag_names = tf.constant(tags, tf.string)
        self.decoding = decoding
        self.options = options or ServingOptions.plain()

    def _tag_ids(self, tokens: tf.RaggedTensor) -> tf.Tensor:
        with xla_loops(self.model, self.options.xla):
            return predict_tag_ids(self.model, self.featurizer.batch(tokens), self.decoding)

    def scores(self, tokens: tf.RaggedTensor) -> tuple[tf.Tensor, ...]:
        """`model.tag_scores` of non-empty ragged sentences."""
        with xla_loops(self.model, self.options.xla):
            return tag_scores(self.model, self.featurizer.batch(tokens))
