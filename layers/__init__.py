"""Keras layers of the suite: recurrent cells, the sequence layer and regularizers."""
# ruff: noqa: F401  (this file is the list of public names)

from layers.cell_base import RecurrentCell, layer_norm
from layers.gru import GRUCell
from layers.lstm import GREFF_VARIANTS, LSTMCell
from layers.mut import MUTCell
from layers.norm_stabilizer import NormStabilizer
from layers.recurrent import Recurrent
from layers.registry import CELL_NAMES, build_cell
from layers.simple_rnn import SimpleRNNCell
