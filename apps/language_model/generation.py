"""Text generation: streaming in Python, and a tf.Module whose sampling loop is in the graph.

Generation starts from the boundary token (newline / `<eos>` / `</s>`) followed by the
prompt's tokens, runs the prompt through the model one token at a time (prefill), then
draws `num_tokens` tokens from softmax(logits / temperature), optionally among the
top k (`layers.decoding.sample_decode`; temperature 0 is greedy search).
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Iterator

import keras
import tensorflow as tf

from apps.language_model.model import TokenStepper
from apps.language_model.tokens import TextTokenizer
from layers.decoding import sample_decode, sample_logits

NEVER = -1  # end token for the decoders: a language model generates a fixed count


class TextGenerator(tf.Module):
    """A trained (stateless) model and its tokenizer, with generation and scoring
    `tf.function`s; saved as-is by `export`.

    Signatures:
        generate(prompt string, num_tokens int32, temperature float32)
        generate_top_k(prompt, num_tokens, temperature, top_k int32; <= 0: all tokens)
            -> {"text": prompt + continuation, "continuation": the generated text,
                "token_ids": int32 [num_tokens], "log_prob": float32}
        score(text string) -> {"nats": summed negative log-likelihood of the text's
            tokens (each given the boundary token and the tokens before it),
            "num_tokens": int32}
    """

    def __init__(self, model: keras.Model, tokenizer: TextTokenizer):
        super().__init__(name="text_generator")
        self.model = model
        self.tokenizer = tokenizer
        self.stepper = TokenStepper(model)
        self._boundary = tf.constant([tokenizer.boundary_id], tf.int32)

    def _prompt_ids(self, prompt):
        return tf.concat([self._boundary, self.tokenizer.encode_tf(prompt)], axis=0)

    def _generate(self, prompt, num_tokens, temperature, top_k, seed=None):
        ids = self._prompt_ids(prompt)
        state = self.stepper.prefill(ids[None, :-1], self.stepper.initial_state(1))
        result = sample_decode(
            self.stepper,
            state,
            ids[-1:],
            end_token=NEVER,
            max_length=tf.maximum(tf.cast(num_tokens, tf.int32), 1),
            temperature=tf.maximum(tf.cast(temperature, tf.float32), 0.0),
            top_k=tf.cast(top_k, tf.int32),
            seed=seed,
        )
        generated = result.sequences[0, : tf.maximum(num_tokens, 0)]
        return {
            "text": self.tokenizer.decode_tf(tf.concat([ids[1:], generated], axis=0)),
            "continuation": self.tokenizer.decode_tf(generated),
            "token_ids": generated,
            "log_prob": result.scores[0],
        }

    @tf.function(
        input_signature=[
            tf.TensorSpec([], tf.string, name="prompt"),
            tf.TensorSpec([], tf.int32, name="num_tokens"),
            tf.TensorSpec([], tf.float32, name="temperature"),
        ]
    )
    def generate(self, prompt, num_tokens, temperature):
        return self._generate(prompt, num_tokens, temperature, tf.constant(0))

    @tf.function(
        input_signature=[
            tf.TensorSpec([], tf.string, name="prompt"),
            tf.TensorSpec([], tf.int32, name="num_tokens"),
            tf.TensorSpec([], tf.float32, name="temperature"),
            tf.TensorSpec([], tf.int32, name="top_k"),
        ]
    )
    def generate_top_k(self, prompt, num_tokens, temperature, top_k):
        return self._generate(prompt, num_tokens, temperature, top_k)

    @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="text")])
    def score(self, text):
        ids = self._prompt_ids(text)
        logits = tf.cast(self.model(ids[None, :-1], training=False), tf.float32)[0]
        nats = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=ids[1:], logits=logits)
        return {"nats": tf.reduce_sum(nats), "num_tokens": tf.shape(ids)[0] - 1}

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
            tf.constant(prompt),
            tf.constant(num_tokens),
            tf.constant(temperature, tf.float32),
            tf.constant(top_k),
        )
        return result["text"].numpy().decode("utf-8")

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
    for token_id in generator.stream(prompt, num_tokens, temperature, top_k, seed):
        piece = generator.tokenizer.token_text(token_id)
        pieces.append(piece)
        out.write(piece)
        out.flush()
    out.write("\n")
    return "".join(pieces)
