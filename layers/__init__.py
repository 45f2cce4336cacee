"""Keras layers of the suite: cells, the sequence layer, regularizers, attention, CRF, decoding.

Every public name is importable from here (`from layers import LSTMCell, Recurrent`). The
submodule holding a name is imported on first use, so `import layers` alone loads no Keras
(command lines answer `--help` without TensorFlow). Loading a saved model needs the
suite's classes registered: call `layers.register_all()` first.
"""

from __future__ import annotations

import importlib

#: public name -> the submodule that defines it.
_MODULES = {
    **dict.fromkeys(
        ("AttentionDecoder", "AttentionDecoderCell", "BahdanauAttention", "LuongAttention",
         "masked_softmax"),
        "attention",
    ),
    "Bidirectional": "bidirectional",
    **dict.fromkeys(("RecurrentCell", "layer_norm"), "cell_base"),
    **dict.fromkeys(
        ("CRF", "AllowedTransitions", "CRFTagger", "allowed_transitions", "crf_log_likelihood",
         "crf_log_partition", "crf_marginals", "crf_posterior_decode", "crf_sequence_score",
         "crf_viterbi_decode"),
        "crf",
    ),
    **dict.fromkeys(
        ("BeamSearchResult", "DecodeResult", "beam_search_decode", "greedy_decode",
         "length_normalized_scores", "sample_decode", "sample_logits", "tile_to_beam"),
        "decoding",
    ),
    "GRUCell": "gru",
    **dict.fromkeys(("GREFF_VARIANTS", "LSTMCell"), "lstm"),
    "MUTCell": "mut",
    "NormStabilizer": "norm_stabilizer",
    "Recurrent": "recurrent",
    **dict.fromkeys(("CELL_SPECS", "build_cell"), "registry"),
    **dict.fromkeys(("CELL_NAMES", "GREFF_VARIANT_NAMES"), "cell_names"),
    **dict.fromkeys(
        ("SCHEDULED_SAMPLING_ARGUMENTS", "SCHEDULED_SAMPLING_TYPES", "ScheduledSamplingSettings",
         "mix_inputs", "scheduled_sampling_arguments", "scheduled_sampling_probability",
         "unroll_with_scheduled_sampling"),
        "scheduled_sampling",
    ),
    "SimpleRNNCell": "simple_rnn",
}

__all__ = sorted(_MODULES) + ["register_all"]


def __getattr__(name: str):
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'layers' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"layers.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


def register_all() -> None:
    """Imports every submodule, registering each serialisable class with Keras (needed
    before `keras.saving.load_model` of a model holding the suite's layers)."""
    for module in sorted(set(_MODULES.values())):
        importlib.import_module(f"layers.{module}")
