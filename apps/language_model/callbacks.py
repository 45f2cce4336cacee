"""Callbacks of language-model training: stream states and perplexity logs (the time
budget is `apps.common.time_budget`)."""

from __future__ import annotations

import math

import keras

from apps.language_model.model import recurrent_layers


class StreamStates(keras.callbacks.Callback):
    """Truncated BPTT bookkeeping for a stateful model.

    Zeroes the recurrent states whenever a pass over the training streams begins (every
    `windows_per_pass` batches, counted across epochs, so that `steps_per_epoch` may cut
    a pass into several epochs), and keeps the per-epoch validation, which runs through
    the same stateful layers, from disturbing them: the training states are saved before
    it, the validation starts from zero states, and the training states come back after.
    """

    def __init__(self, windows_per_pass: int):
        super().__init__()
        self.windows_per_pass = windows_per_pass
        self.batches_seen = 0
        self.resets = 0
        self._saved = None

    def _variables(self):
        return [v for layer in recurrent_layers(self.model) if layer.stateful for v in layer.states]

    def on_train_begin(self, logs=None):
        self.batches_seen = 0

    def on_train_batch_begin(self, batch, logs=None):
        if self.batches_seen % self.windows_per_pass == 0:
            for variable in self._variables():
                variable.assign(keras.ops.zeros_like(variable))
            self.resets += 1
        self.batches_seen += 1

    def on_test_begin(self, logs=None):
        variables = self._variables()
        self._saved = [keras.ops.convert_to_numpy(v) for v in variables]
        for variable in variables:
            variable.assign(keras.ops.zeros_like(variable))

    def on_test_end(self, logs=None):
        if self._saved is not None:
            for variable, value in zip(self._variables(), self._saved):
                variable.assign(value)
            self._saved = None


class PerplexityLogs(keras.callbacks.Callback):
    """Adds `perplexity` and `bits_per_token` (and their `val_` forms) to the epoch logs,
    from the `cross_entropy` metric (nats per token)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for prefix in ("", "val_"):
            nats = logs.get(prefix + "cross_entropy")
            if nats is not None:
                logs[prefix + "perplexity"] = math.exp(min(float(nats), 700.0))
                logs[prefix + "bits_per_token"] = float(nats) / math.log(2)
