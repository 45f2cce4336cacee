"""build_cell / CELL_NAMES: every name builds, overrides pass through, configs round-trip."""

import pytest

from layers import CELL_NAMES, GREFF_VARIANTS, GRUCell, LSTMCell, MUTCell, SimpleRNNCell, build_cell
from layers.registry import CELL_SPECS


def test_the_keras_free_names_are_exactly_the_buildable_cells():
    # Command lines check --cell against layers.cell_names without importing Keras: every
    # name there must build, and every cell of the registry must be named there.
    assert set(CELL_NAMES) == set(CELL_SPECS) and len(CELL_NAMES) == len(set(CELL_NAMES))
    assert set(GREFF_VARIANTS) <= set(CELL_NAMES)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_every_name_builds_and_round_trips_its_config(name):
    cell = build_cell(name, 5, dropout=0.1, recurrent_dropout=0.2, zoneout_hidden=0.05, seed=3)
    assert cell.units == 5 and cell.dropout == 0.1 and cell.recurrent_dropout == 0.2
    clone = type(cell).from_config(cell.get_config())
    assert clone.get_config() == cell.get_config()
    for key, value in CELL_SPECS[name][1].items():
        assert cell.get_config()[key] == value


def test_configurations():
    assert isinstance(build_cell("irnn", 3), SimpleRNNCell) and build_cell("irnn", 3).identity_init
    assert build_cell("lstm", 3).peepholes is False
    assert build_cell("peephole", 3).get_config() | {"name": None} == (
        build_cell("vanilla", 3).get_config() | {"name": None}
    )
    assert isinstance(build_cell("np", 3), LSTMCell)
    assert build_cell("gru", 3).reset_after and not build_cell("gru_cho", 3).reset_after
    assert isinstance(build_cell("layer_norm_gru", 3), GRUCell) and build_cell("layer_norm_gru", 3).layer_norm
    assert build_cell("layer_norm_lstm", 3).layer_norm
    assert isinstance(build_cell("mut2", 3), MUTCell) and build_cell("mut2", 3).variant == 2
    assert build_cell("lstm", 3, zoneout_cell=0.2, forget_bias=0.0).zoneout_cell == 0.2
    assert build_cell("LSTM", 3).units == 3


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="Known names: rnn, irnn"):
        build_cell("transformer", 3)
