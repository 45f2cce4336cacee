"""Images in, captions out, inside one TF graph: the `Captioner` module.

Decoding of the image bytes (any size; JPEG, PNG, grayscale, RGBA), resizing, the
encoder, greedy search, beam search or sampling (`layers.decoding`) and the ids' text all
run in `tf.function`s, so the same module serves `evaluate`, `predict`, the validation
CIDEr-D of training and the exported SavedModel. With the serving lever `xla`
(`apps.common.serving`, `export --xla true`) the encoder and the search of `caption` run
as one XLA program per bucket of batch sizes (the batch padded with copies of its first
image); sampling runs without it.
"""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf

from apps.captioning.model import CaptionModel
from apps.captioning.text import CaptionText
from apps.common.serving import ServingOptions, xla_function
from layers.decoding import beam_search_decode, greedy_decode, sample_decode, tile_to_beam
from layers.loop.buckets import bucket_size
from pipelines.captions import decode_image_batch
from pipelines.tokenizers import BOS_ID, EOS_ID, PAD_ID


class Captioner(tf.Module):
    """Captions images with a trained `CaptionModel`.

    Args:
        model: the trained model (its variables are tracked, so the module exports).
        text: the run's caption vocabulary.
        decoding: "greedy", "beam" or "sample".
        beam_width: beam search's width (1 is greedy search).
        length_penalty: GNMT length penalty alpha of beam search.
        temperature: sampling temperature (0: greedy).
        max_length: the most tokens a caption has (<end> included).
        seed: sampling seed (None: a new draw at every call).
        options: the serving levers of `caption` (default: none).
    """

    def __init__(
        self,
        model: CaptionModel,
        text: CaptionText,
        decoding: str = "beam",
        beam_width: int = 3,
        length_penalty: float = 0.0,
        temperature: float = 1.0,
        max_length: int = 25,
        seed: int | None = None,
        options: ServingOptions | None = None,
    ):
        super().__init__(name="captioner")
        if decoding not in ("greedy", "beam", "sample"):
            raise ValueError(f"--decoding must be greedy, beam or sample, got {decoding!r}")
        self.model = model
        # Listed explicitly so that tf.saved_model.save tracks every weight of the model.
        self.model_variables = [variable.value for variable in model.variables]
        self.detokenizer = text.graph_detokenizer()
        self.decoding = "greedy" if decoding == "beam" and beam_width == 1 else decoding
        self.beam_width = int(beam_width)
        self.length_penalty = float(length_penalty)
        self.temperature = float(temperature)
        self.max_length = int(max_length)
        self.seed = seed
        self.image_size = model.image_size
        self.xla = (options or ServingOptions.plain()).xla and self.decoding != "sample"
        self._compiled_search = xla_function(self._pixels_search, self.xla)
        feature_shape = model.encoder.outputs[0 if model.feature_kind == "grid" else 1].shape[1:]
        self.caption_features = tf.function(
            self._caption_features,
            input_signature=[tf.TensorSpec([None, *feature_shape], tf.float32)],
        )
        size = self.image_size
        self.caption_pixels = tf.function(
            self._caption_pixels, input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8)]
        )

    def search(self, encoded):
        """Token ids `[N, max_length]` (<end> then padding) and their log-probabilities."""
        memory, keys, states = self.model.start(encoded)
        start = tf.fill([tf.shape(encoded)[0]], tf.constant(BOS_ID, tf.int32))
        if self.decoding == "beam":
            memory, keys = tile_to_beam((memory, keys), self.beam_width) if memory is not None else (None, None)

        def step_fn(token_ids, step_states):
            logits, new_states, _ = self.model.step(token_ids, step_states, memory, keys)
            return logits, new_states

        if self.decoding == "greedy":
            result = greedy_decode(step_fn, states, start, EOS_ID, self.max_length, PAD_ID)
            return result.sequences, result.scores
        if self.decoding == "sample":
            result = sample_decode(step_fn, states, start, EOS_ID, self.max_length,
                                   temperature=self.temperature, seed=self.seed, padding_token=PAD_ID)
            return result.sequences, result.scores
        result = beam_search_decode(step_fn, states, start, EOS_ID, self.max_length, self.beam_width,
                                    length_penalty=self.length_penalty, padding_token=PAD_ID)
        return result.sequences[:, 0], result.log_probs[:, 0]

    def _caption_features(self, features):
        sequences, log_probs = self.search(features)
        return {"token_ids": sequences, "log_probs": log_probs}

    def _pixels_search(self, pixels):
        return self.search(self.model.encode(pixels))

    def _levered_search(self, pixels, xla: bool):
        """`search(encode(pixels))` for a batch of any size. An empty batch runs one black
        image instead (oneDNN's convolutions refuse an empty batch on some CPUs, e.g. AMD
        EPYC with AVX-512) and returns no rows. With `xla`, one compiled program per
        bucket of rows: the batch is padded with copies of its first image, so that the
        search stops no later than for the real rows."""
        count = tf.shape(pixels)[0]
        black = tf.zeros([1, self.image_size, self.image_size, 3], tf.uint8)
        pixels = tf.cond(count > 0, lambda: pixels, lambda: black)
        if xla:
            rows = tf.range(bucket_size(tf.shape(pixels)[0])) % tf.shape(pixels)[0]
            sequences, log_probs = self._compiled_search(tf.gather(pixels, rows))
        else:
            sequences, log_probs = self._pixels_search(pixels)
        return sequences[:count], log_probs[:count]

    def _caption_pixels(self, pixels):
        """uint8 images `[N, S, S, 3]` (already resized) -> token ids and log-probabilities."""
        sequences, log_probs = self._levered_search(pixels, xla=False)
        return {"token_ids": sequences, "log_probs": log_probs}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="images")])
    def caption(self, images):
        """Encoded images `[N]` (JPEG/PNG/BMP/GIF bytes of any size) ->
        `{"captions": [N] strings, "log_probs": [N], "valid": [N] bool}`; an image that
        cannot be decoded gets an empty caption, log-probability 0 and `valid` False."""
        pixels, valid = decode_image_batch(images, self.image_size)
        sequences, log_probs = self._levered_search(pixels, self.xla)
        captions = tf.where(valid, self.detokenizer(sequences), "")
        return {"captions": captions, "log_probs": tf.where(valid, log_probs, 0.0), "valid": valid}


def caption_arrays(captioner: Captioner, inputs: np.ndarray, kind: str, batch_size: int = 64):
    """Token ids `[N, T]` and log-probabilities of stored images (`kind` "pixels") or
    cached encoder features ("features"), in batches; with the wall seconds spent."""
    function = captioner.caption_pixels if kind == "pixels" else captioner.caption_features
    ids, scores = [], []
    started = time.perf_counter()
    for begin in range(0, len(inputs), batch_size):
        batch = np.asarray(inputs[begin : begin + batch_size])
        if kind == "features":
            batch = batch.astype(np.float32)
        output = function(tf.constant(batch))
        ids.append(output["token_ids"].numpy())
        scores.append(output["log_probs"].numpy())
    seconds = time.perf_counter() - started
    width = max((part.shape[1] for part in ids), default=0)
    ids = [np.pad(part, [(0, 0), (0, width - part.shape[1])]) for part in ids]
    return np.concatenate(ids) if ids else np.zeros([0, 0], np.int32), np.concatenate(scores) if scores else np.zeros([0]), seconds


def alignments_of(model: CaptionModel, encoded: np.ndarray, token_ids: np.ndarray) -> np.ndarray:
    """The attention weights `[steps, L]` of the attention decoder writing `token_ids`
    (<end> included) for one image's encoder grid `encoded` `[h, w, C]`."""
    memory, keys, states = model.start(tf.constant(encoded[None], tf.float32))
    previous = BOS_ID
    rows = []
    for token in token_ids:
        _, states, alignments = model.step(tf.constant([previous]), states, memory, keys)
        rows.append(np.asarray(alignments)[0])
        previous = int(token)
    return np.stack(rows) if rows else np.zeros([0, model.grid_cells])
