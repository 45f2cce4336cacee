"""Build any cell of the suite by name: `build_cell("cifg", 128, dropout=0.2)`."""

from __future__ import annotations

from layers.cell_base import RecurrentCell
from layers.cell_names import CELL_NAMES
from layers.gru import GRUCell
from layers.lstm import GREFF_VARIANTS, LSTMCell
from layers.mut import MUTCell
from layers.simple_rnn import SimpleRNNCell

__all__ = ["CELL_NAMES", "CELL_SPECS", "build_cell"]

#: name -> (cell class, keyword arguments of that configuration).
CELL_SPECS: dict[str, tuple[type[RecurrentCell], dict]] = {
    "rnn": (SimpleRNNCell, {"activation": "tanh"}),
    "irnn": (SimpleRNNCell, {"activation": "relu", "identity_init": True}),
    "lstm": (LSTMCell, {}),
    "peephole": (LSTMCell, dict(GREFF_VARIANTS["vanilla"])),
    **{name: (LSTMCell, dict(kwargs)) for name, kwargs in GREFF_VARIANTS.items()},
    "gru": (GRUCell, {"reset_after": True}),
    "gru_cho": (GRUCell, {"reset_after": False}),
    "layer_norm_lstm": (LSTMCell, {"layer_norm": True}),
    "layer_norm_gru": (GRUCell, {"reset_after": True, "layer_norm": True}),
    "mut1": (MUTCell, {"variant": 1}),
    "mut2": (MUTCell, {"variant": 2}),
    "mut3": (MUTCell, {"variant": 3}),
}

if tuple(CELL_SPECS) != CELL_NAMES:  # the Keras-free list of names must name these cells
    raise ImportError(f"layers.cell_names.CELL_NAMES {CELL_NAMES} != the registry's {tuple(CELL_SPECS)}")


def build_cell(name: str, units: int, **overrides) -> RecurrentCell:
    """Builds the cell called `name` with `units` units.

    Names: "rnn" (tanh Elman), "irnn" (ReLU, identity init), "lstm" (the Keras LSTM, no
    peepholes), "peephole" (= Greff's "vanilla"), the keys of `GREFF_VARIANTS`
    ("vanilla", "nig", "nfg", "nog", "niaf", "noaf", "np", "cifg", "fgr"), "gru"
    (`reset_after=True`, Keras' default), "gru_cho" (`reset_after=False`),
    "layer_norm_lstm", "layer_norm_gru", "mut1", "mut2", "mut3".

    `overrides` are passed to the cell's constructor over the configuration's own
    arguments (e.g. `dropout`, `recurrent_dropout`, `output_dropout`, `zoneout_cell`,
    `zoneout_hidden`, `recurrent_weight_dropout`, `forget_bias`, `name`).
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in CELL_SPECS:
        raise ValueError(f"Unknown cell name {name!r}. Known names: {', '.join(CELL_NAMES)}.")
    cell_class, kwargs = CELL_SPECS[key]
    return cell_class(units, **{**kwargs, **overrides})
