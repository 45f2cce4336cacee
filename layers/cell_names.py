"""The names `build_cell` accepts, importable without Keras (command lines check
`--cell` before TensorFlow is loaded). `layers.registry` maps each name to its cell."""

from __future__ import annotations

#: The Greff et al. (2017) LSTM variants, in the paper's order.
GREFF_VARIANT_NAMES: tuple[str, ...] = (
    "vanilla", "nig", "nfg", "nog", "niaf", "noaf", "np", "cifg", "fgr",
)

#: Every name `layers.build_cell` accepts.
CELL_NAMES: tuple[str, ...] = (
    "rnn", "irnn", "lstm", "peephole", *GREFF_VARIANT_NAMES, "gru", "gru_cho",
    "layer_norm_lstm", "layer_norm_gru", "mut1", "mut2", "mut3",
)
