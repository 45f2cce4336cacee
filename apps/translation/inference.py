"""Strings in, translations out, inside one TF graph: the `Translator` module.

SentencePiece tokenisation, the encoder, greedy or beam search (`layers.decoding`) and
detokenisation all run in `tf.function`s, so the same module serves `evaluate`,
`translate`, the validation BLEU of training and the exported SavedModel.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from apps.common.serving import ServingOptions, by_length, xla_function
from apps.translation.data import Vocabularies
from apps.translation.model import AttentionSeq2Seq
from layers.decoding import beam_search_decode, greedy_decode, tile_to_beam
from pipelines.tokenizers import BOS_ID, EOS_ID, PAD_ID, SentencePieceTokenizer


class Translator(tf.Module):
    """Translates `[N]` source strings with a trained `AttentionSeq2Seq`, or with an
    ensemble of them.

    An ensemble pools its members log-linearly, step by step: the next piece's
    log-probabilities are the mean of the members' (each member reads the shared prefix
    with its own encoder memory and decoder state), and greedy or beam search runs over
    that mean as over one model's (the search renormalises it).

    Args:
        model: the trained model, or a list of models sharing `vocabularies` (their
            variables are tracked, so the module exports).
        vocabularies: the run's SentencePiece models.
        beam_width: 1 is greedy search.
        length_penalty: GNMT length penalty alpha of beam search (0: raw log-probability).
        max_length: the most target pieces per translation (a graph constant).
        max_source_length: longer sources are truncated to this many pieces (0: never).
        lowercase: lowercase the inputs (for models trained on lowercased text).
        options: the serving levers of `translate` (`apps.common.serving`; default none):
            rows grouped by source length, and each group's encoder and search as one
            XLA program per bucket of shapes.
    """

    def __init__(
        self,
        model: AttentionSeq2Seq,
        vocabularies: Vocabularies,
        beam_width: int = 5,
        length_penalty: float = 0.6,
        max_length: int = 100,
        max_source_length: int = 0,
        lowercase: bool = False,
        options: ServingOptions | None = None,
    ):
        super().__init__(name="translator")
        if beam_width < 1:
            raise ValueError(f"--beam-width must be >= 1, got {beam_width}")
        self.models = list(model) if isinstance(model, (list, tuple)) else [model]
        if not self.models:
            raise ValueError("a Translator needs at least one model")
        self.model = self.models[0]  # attention heatmaps show the first member's alignments
        # Listed explicitly so that tf.saved_model.save tracks every weight of the models.
        self.model_variables = [variable.value for m in self.models for variable in m.variables]
        self.source_tokenizer = SentencePieceTokenizer(vocabularies.source, dense=False)
        self.target_tokenizer = SentencePieceTokenizer(vocabularies.target, dense=False)
        self.beam_width = int(beam_width)
        self.length_penalty = float(length_penalty)
        self.max_length = int(max_length)
        self.max_source_length = int(max_source_length)
        self.lowercase = bool(lowercase)
        self.options = options or ServingOptions.plain()
        self._group_search = xla_function(self._search_outputs, self.options.xla)

    def _pool(self, logits: list[tf.Tensor]) -> tf.Tensor:
        """One model's logits as they are; the mean log-probabilities of several."""
        if len(logits) == 1:
            return logits[0]
        log_probs = [tf.nn.log_softmax(tf.cast(member, tf.float32)) for member in logits]
        return tf.add_n(log_probs) / len(log_probs)

    def _search(self, source_ids):
        encoded = [model.encode(source_ids, training=False) for model in self.models]
        states = [
            model.initial_decoder_state(cell_states, memory)
            for model, (memory, _, cell_states) in zip(self.models, encoded)
        ]
        start = tf.fill([tf.shape(source_ids)[0]], tf.constant(BOS_ID, tf.int32))
        memories = [(memory, mask) for memory, mask, _ in encoded]
        if self.beam_width > 1:
            memories = [tile_to_beam(pair, self.beam_width) for pair in memories]
        keys = [
            model.decoder_step_cell.attention.setup_memory(memory)
            for model, (memory, _) in zip(self.models, memories)
        ]

        def step_fn(token_ids, step_states):
            logits, new_states = [], []
            for model, (memory, mask), memory_keys, state in zip(self.models, memories, keys, step_states):
                member_logits, member_states, _ = model.decode_step(token_ids, state, memory, mask, memory_keys)
                logits.append(member_logits)
                new_states.append(member_states)
            return self._pool(logits), new_states

        if self.beam_width == 1:
            result = greedy_decode(step_fn, states, start, EOS_ID, self.max_length, PAD_ID)
            return result.sequences, result.scores
        result = beam_search_decode(
            step_fn,
            states,
            start,
            EOS_ID,
            self.max_length,
            self.beam_width,
            length_penalty=self.length_penalty,
            padding_token=PAD_ID,
        )
        return result.sequences[:, 0], result.scores[:, 0]

    def _search_outputs(self, inputs: dict) -> dict:
        sequences, scores = self._search(inputs["source_ids"])
        return {"sequences": sequences, "scores": scores}

    def _search_levered(self, source_ids):
        """`_search` with the serving levers of `options`."""
        if not (self.options.group_by_length or self.options.xla):
            return self._search(source_ids)
        lengths = tf.reduce_sum(tf.cast(tf.not_equal(source_ids, PAD_ID), tf.int32), axis=1)
        outputs = by_length(
            self._group_search, {"source_ids": source_ids}, lengths,
            {"sequences": tf.TensorSpec([None], tf.int32), "scores": tf.TensorSpec([], tf.float32)}, pad_to_buckets=self.options.xla,
        )  # fmt: skip
        return outputs["sequences"], outputs["scores"]

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
    def translate_ids(self, source_ids):
        """Source ids `[N, S]` (0-padded) -> target ids `[N, max_length]` (</s> and padding
        included) and scores `[N]`."""
        source_ids = tf.pad(source_ids, [[0, 0], [0, tf.maximum(0, 1 - tf.shape(source_ids)[1])]])
        sequences, scores = self._search(source_ids)
        return {"token_ids": sequences, "scores": scores}

    def tokenize(self, sentences):
        sentences = tf.strings.strip(sentences)
        if self.lowercase:
            sentences = tf.strings.lower(sentences, encoding="utf-8")
        ids = self.source_tokenizer(sentences)
        if self.max_source_length > 0:
            ids = ids[:, : self.max_source_length]
        return ids.to_tensor(default_value=PAD_ID)

    def detokenize(self, token_ids):
        keep = tf.logical_and(tf.not_equal(token_ids, PAD_ID), tf.not_equal(token_ids, EOS_ID))
        text = self.target_tokenizer.detokenize(tf.ragged.boolean_mask(token_ids, keep))
        return tf.strings.strip(text)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="sources")])
    def translate(self, sentences):
        """Source sentences `[N]` -> `{"translations": [N] strings, "scores": [N]}`."""
        source_ids = self.tokenize(sentences)
        source_ids = tf.pad(source_ids, [[0, 0], [0, tf.maximum(0, 1 - tf.shape(source_ids)[1])]])
        sequences, scores = self._search_levered(source_ids)
        return {"translations": self.detokenize(sequences), "scores": scores}


def translate_sentences(
    translator, sentences: Sequence[str], batch_size: int = 64
) -> tuple[list[str], float, float]:
    """Translates in batches of similar length (in the given order on return); returns
    the translations, the wall seconds and the CPU seconds of this process spent.
    `translator` is a `Translator` or a loaded export (anything with
    `translate(strings) -> {"translations": ...}`)."""
    order = sorted(range(len(sentences)), key=lambda index: len(sentences[index]))
    outputs: list[str] = [""] * len(sentences)
    started, cpu_started = time.perf_counter(), time.process_time()
    for begin in range(0, len(order), batch_size):
        indices = order[begin : begin + batch_size]
        batch = tf.constant([sentences[index] for index in indices], tf.string)
        translations = translator.translate(batch)["translations"].numpy()
        for index, text in zip(indices, translations):
            outputs[index] = text.decode("utf-8")
    return outputs, time.perf_counter() - started, time.process_time() - cpu_started


def alignments_of(translator: Translator, sentence: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source ids, translation ids (</s> included) and the attention weights
    `[target, source]` of the model translating `sentence`."""
    source_ids = translator.tokenize(tf.constant([sentence]))
    if source_ids.shape[1] == 0:
        source_ids = tf.zeros([1, 1], tf.int32)
    token_ids = translator.translate_ids(source_ids)["token_ids"].numpy()[0]
    length = int(np.sum(token_ids != PAD_ID))
    target_ids = token_ids[:length]
    target_in = np.concatenate([[BOS_ID], target_ids[:-1]])[None].astype("int32")
    _, alignments = translator.model.teacher_forced(source_ids, target_in, training=False)
    return source_ids.numpy()[0], target_ids, np.asarray(alignments)[0]
