"""Keras layers of the suite: cells, the sequence layer, regularizers, attention, CRF, decoding."""
# ruff: noqa: F401  (this file is the list of public names)

from layers.attention import (
    AttentionDecoder,
    AttentionDecoderCell,
    BahdanauAttention,
    LuongAttention,
    masked_softmax,
)
from layers.bidirectional import Bidirectional
from layers.cell_base import RecurrentCell, layer_norm
from layers.crf import (
    CRF,
    AllowedTransitions,
    CRFTagger,
    allowed_transitions,
    crf_log_likelihood,
    crf_log_partition,
    crf_marginals,
    crf_posterior_decode,
    crf_sequence_score,
    crf_viterbi_decode,
)
from layers.decoding import (
    BeamSearchResult,
    DecodeResult,
    beam_search_decode,
    greedy_decode,
    length_normalized_scores,
    sample_decode,
    sample_logits,
    tile_to_beam,
)
from layers.gru import GRUCell
from layers.lstm import GREFF_VARIANTS, LSTMCell
from layers.mut import MUTCell
from layers.norm_stabilizer import NormStabilizer
from layers.recurrent import Recurrent
from layers.registry import CELL_NAMES, build_cell
from layers.scheduled_sampling import (
    SCHEDULED_SAMPLING_TYPES,
    mix_inputs,
    scheduled_sampling_probability,
    unroll_with_scheduled_sampling,
)
from layers.simple_rnn import SimpleRNNCell
