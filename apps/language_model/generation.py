"""Text generation: streaming in Python, and a tf.Module whose sampling loop is in the graph.

Generation starts from the boundary token (newline / `<eos>` / `</s>`) followed by the
prompt's tokens, runs the prompt through the model one token at a time (prefill), then
draws `num_tokens` tokens from softmax(logits / temperature), optionally among the
top k (`layers.decoding.sample_decode`; temperature 0 is greedy search). The text is the
prompt as given followed by the text of the generated tokens (`TextTokenizer.token_text`).
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Iterator

import keras
import tensorflow as tf

from apps.common.serving import ServingOptions, xla_function, xla_loops
from apps.language_model.model import TokenStepper
from apps.language_model.tokens import TextTokenizer
from layers.decoding import sample_decode, sample_logits
from layers.loop.buckets import bucket_size

NEVER = -1  # end token for the decoders: a language model generates a fixed count


class TextGenerator(tf.Module):
    """A trained (stateless) model and its tokenizer, with generation and scoring
    `tf.function`s; saved as-is by `export`.

    Signatures take a batch of strings; each element is continued or scored on its own,
    exactly as it would be alone:
        generate(prompts string [B], num_tokens int32, temperature float32)
        generate_top_k(prompts, num_tokens, temperature, top_k int32; <= 0: all tokens)
            -> {"text": [B] the prompt as given followed by its continuation,
                "continuation": [B] the generated text, "token_ids": int32 [B, num_tokens],
                "log_prob": float32 [B], the log-probability of the generated tokens}
            `num_tokens <= 0` generates nothing (log_prob 0); `temperature` 0 is greedy
            search, a negative or NaN temperature an InvalidArgumentError.
        score(texts string [B]) -> {"nats": [B] summed negative log-likelihood of each
            text's tokens (each given the boundary token and the tokens before it),
            "num_tokens": int32 [B]}
    Strings may hold any bytes (invalid UTF-8 is read as U+FFFD).

    `options`: the serving levers (`apps.common.serving`; default none). With `xla`, the
    prefill and the sampling loop of each prompt run as one XLA program per bucket of
    prompt lengths (and per `num_tokens`), and scoring runs the XLA recurrent loop.
    """

    def __init__(self, model: keras.Model, tokenizer: TextTokenizer, options: ServingOptions | None = None):
        super().__init__(name="text_generator")
        self.model = model
        self.tokenizer = tokenizer
        self.stepper = TokenStepper(model)
        self._boundary = tf.constant([tokenizer.boundary_id], tf.int32)
        self.options = options or ServingOptions.plain()
        self._sample_ids = xla_function(self._sample_padded, self.options.xla)

    def _prompt_ids(self, prompt):
        text = tf.strings.unicode_transcode(prompt, "UTF-8", "UTF-8", errors="replace")
        return tf.concat([self._boundary, self.tokenizer.encode_tf(text)], axis=0)

    def _sample_padded(self, ids, count, steps, temperature, top_k, seed=None):
        """`steps` (> 0) token ids after the prompt `ids[:count]` (then padding), and
        their log-probability."""
        state = self.stepper.prefill(ids[None], self.stepper.initial_state(1), count - 1)
        result = sample_decode(
            self.stepper, state, ids[count - 1 : count], end_token=NEVER, max_length=steps,
            temperature=temperature, top_k=top_k, seed=seed,
        )  # fmt: skip
        return result.sequences[0, :steps], result.scores[0]

    def _continue(self, prompt, steps, temperature, top_k, seed):
        """`steps` (> 0) token ids after one prompt, and their log-probability."""
        ids = self._prompt_ids(prompt)
        count = tf.size(ids)
        if not self.options.xla:
            return self._sample_padded(ids, count, steps, temperature, top_k, seed)
        padded = tf.pad(ids, [[0, bucket_size(count) - count]])  # one program per bucket
        return self._sample_ids(padded, count, steps, temperature, top_k, seed)

    def _generate(self, prompts, num_tokens, temperature, top_k, seed=None):
        temperature = tf.cast(temperature, tf.float32)
        valid = tf.debugging.Assert(  # NaN fails the comparison too
            temperature >= 0.0, ["temperature must be >= 0 (0: greedy search), got", temperature]
        )
        with tf.control_dependencies([valid]):
            temperature = tf.identity(temperature)
        steps = tf.maximum(tf.cast(num_tokens, tf.int32), 0)
        top_k = tf.cast(top_k, tf.int32)

        def one(prompt):
            generated, log_prob = tf.cond(
                steps > 0,
                lambda: self._continue(prompt, steps, temperature, top_k, seed),
                lambda: (tf.zeros([0], tf.int32), tf.constant(0.0)),
            )
            continuation = self.tokenizer.continuation_tf(prompt, generated)
            return {
                "text": tf.strings.join([prompt, continuation]),
                "continuation": continuation,
                "token_ids": generated,
                "log_prob": log_prob,
            }

        signature = {
            "text": tf.TensorSpec([], tf.string),
            "continuation": tf.TensorSpec([], tf.string),
            "token_ids": tf.TensorSpec([None], tf.int32),
            "log_prob": tf.TensorSpec([], tf.float32),
        }
        return _map(one, prompts, signature, {"token_ids": steps})

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="prompts"),
            tf.TensorSpec([], tf.int32, name="num_tokens"),
            tf.TensorSpec([], tf.float32, name="temperature"),
        ]
    )
    def generate(self, prompts, num_tokens, temperature):
        return self._generate(prompts, num_tokens, temperature, tf.constant(0))

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="prompts"),
            tf.TensorSpec([], tf.int32, name="num_tokens"),
            tf.TensorSpec([], tf.float32, name="temperature"),
            tf.TensorSpec([], tf.int32, name="top_k"),
        ]
    )
    def generate_top_k(self, prompts, num_tokens, temperature, top_k):
        return self._generate(prompts, num_tokens, temperature, top_k)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
    def score(self, texts):
        def one(text):
            ids = self._prompt_ids(text)

            def nats():
                with xla_loops(self.model, self.options.xla):
                    logits = tf.cast(self.model(ids[None, :-1], training=False), tf.float32)[0]
                losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=ids[1:], logits=logits)
                return tf.reduce_sum(losses)

            count = tf.shape(ids)[0] - 1
            return {"nats": tf.cond(count > 0, nats, lambda: tf.constant(0.0)), "num_tokens": count}

        signature = {"nats": tf.TensorSpec([], tf.float32), "num_tokens": tf.TensorSpec([], tf.int32)}
        return _map(one, texts, signature)

    def signatures(self) -> dict:
        return {
            "serving_default": self.generate.get_concrete_function(),
            "generate": self.generate.get_concrete_function(),
            "generate_top_k": self.generate_top_k.get_concrete_function(),
            "score": self.score.get_concrete_function(),
        }

    # ------------------------------------------------------------------ eager helpers
    def generate_text(
        self, prompt: str, num_tokens: int, temperature: float = 1.0, top_k: int = 0
    ) -> str:
        """The prompt and its continuation (one in-graph call)."""
        result = self.generate_top_k(
            tf.constant([prompt]),
            tf.constant(num_tokens),
            tf.constant(temperature, tf.float32),
            tf.constant(top_k),
        )
        return result["text"].numpy()[0].decode("utf-8")

    def stream(
        self,
        prompt: str,
        num_tokens: int,
        temperature: float = 1.0,
        top_k: int = 0,
        seed: int | None = None,
    ) -> Iterator[int]:
        """Yields the generated token ids one at a time, as they are drawn."""
        ids = self._prompt_ids(tf.constant(prompt))
        state = _prefill(self.stepper, ids[None, :-1], self.stepper.initial_state(1))
        token = ids[-1:]
        for step in range(num_tokens):
            logits, state = _step(self.stepper, token, state)
            token = sample_logits(logits, temperature, top_k or None, seed, step)
            yield int(token[0])


def _map(fn, elements, signature: dict, widths: dict | None = None) -> dict:
    """`tf.map_fn(fn, elements)`, each element on its own; an empty batch gives empty
    outputs (`widths`: the length of the outputs that are vectors)."""
    widths = widths or {}

    def empty():
        return {key: tf.zeros([0, widths[key]] if key in widths else [0], spec.dtype)
                for key, spec in signature.items()}  # fmt: skip

    return tf.cond(
        tf.size(elements) > 0,
        lambda: tf.map_fn(fn, elements, fn_output_signature=signature),
        empty,
    )


_compiled: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _compiled_for(stepper: TokenStepper) -> dict:
    if stepper not in _compiled:
        _compiled[stepper] = {
            "step": tf.function(stepper.__call__, reduce_retracing=True),
            "prefill": tf.function(stepper.prefill, reduce_retracing=True),
        }
    return _compiled[stepper]


def _step(stepper: TokenStepper, token, state):
    return _compiled_for(stepper)["step"](token, state)


def _prefill(stepper: TokenStepper, ids, state):
    return _compiled_for(stepper)["prefill"](ids, state)


def print_stream(
    generator: TextGenerator,
    prompt: str,
    num_tokens: int,
    temperature: float,
    top_k: int,
    seed: int | None,
    out=None,
) -> str:
    """Prints the prompt, then each generated token as soon as it is drawn."""
    out = out or sys.stdout
    out.write(prompt)
    out.flush()
    pieces = []
    line_start = prompt == "" or prompt[-1] in " \n\t\r"
    for token_id in generator.stream(prompt, num_tokens, temperature, top_k, seed):
        piece = generator.tokenizer.token_text(token_id, line_start)
        line_start = token_id == generator.tokenizer.boundary_id
        pieces.append(piece)
        out.write(piece)
        out.flush()
    out.write("\n")
    return "".join(pieces)
