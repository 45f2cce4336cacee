"""Options of the translation app; every field is a command-line flag.

Option names follow OpenNMT-tf where it has one (`batch_type`, `length_bucket_width`,
`beam_width`, `length_penalty`, `scheduled_sampling_type`, `scheduled_sampling_k`,
`maximum_features_length`, `maximum_labels_length`, `label_smoothing`).
"""

from __future__ import annotations

import dataclasses

from apps.common.config import ScheduledSamplingOptions, TrainConfig, option
from layers.cell_names import CELL_NAMES

ATTENTION_TYPES = ("bahdanau", "luong_dot", "luong_general", "luong_concat")
VOCABULARY_TYPES = ("joint", "separate")
# "bucket": length buckets (OpenNMT-tf); the others are Morishita et al. (2017)'s strategies.
BATCH_STRATEGIES = ("bucket", "shuffle", "src", "tgt", "src_tgt", "tgt_src")


@dataclasses.dataclass
class TranslationConfig(ScheduledSamplingOptions, TrainConfig):
    # --- data: local parallel files (line i of source translates line i of target) ...
    train_source: str = option("", "training sources, one sentence a line (.gz ok)", scope="data")
    train_target: str = option("", "training targets, line i translating line i of the "
                               "sources", scope="data")
    valid_source: str = option("", "validation sources", scope="data")
    valid_target: str = option("", "validation targets", scope="data")
    test_source: str = option("", "test sources (scored by evaluate --split test)", scope="data")
    test_target: str = option("", "test targets", scope="data")
    # ... or a TFDS translation set (used when no local train files are given).
    tfds_name: str = option("", "a TFDS translation set instead of local files, e.g. "
                            "wmt14_translate/de-en", scope="data")
    tfds_data_dir: str = option("", "where TFDS keeps prepared datasets (none: its default)",
                                scope="data")
    source_language: str = option("en", "TFDS feature name of the source side", scope="data")
    target_language: str = option("de", "TFDS feature name of the target side", scope="data")
    tfds_train_split: str = option("train", "TFDS split to train on", scope="data")
    tfds_valid_split: str = option("validation", "TFDS split to validate on", scope="data")
    tfds_test_split: str = option("test", "TFDS split to test on", scope="data")
    max_train_examples: int = option(0, "use only the first training pairs; 0: all",
                                     scope="data", at_least=0)

    # --- tokenisation (SentencePiece, trained on the training split)
    lowercase: bool = option(False, "lowercase both sides (and inputs at inference), as the "
                             "WMT16/17 multimodal task 1", scope="model")
    vocabulary: str = option("joint", "one SentencePiece model for both sides (joint) or one "
                             "each (separate)", scope="model", choices=VOCABULARY_TYPES)
    vocab_size: int = option(8000, "pieces per SentencePiece model", scope="model", at_least=16)
    sentencepiece_model_type: str = option("unigram", "SentencePiece model type", scope="model",
                                           choices=("unigram", "bpe"))
    sentencepiece_input_sentences: int = option(200_000, "sentences sampled to train "
                                                "SentencePiece", scope="model", at_least=1)

    # --- batching
    batch_type: str = option("tokens", "whether --batch-size counts sentence pairs "
                             "(examples) or target tokens", choices=("examples", "tokens"))
    batch_size: int = 4096
    batch_strategy: str = option("bucket", "bucket (length buckets) or a Morishita et al. "
                                 "2017 strategy: shuffle, src, tgt, src_tgt, tgt_src",
                                 choices=BATCH_STRATEGIES)
    length_bucket_width: int = option(2, "bucket: width of a length bucket", at_least=1)
    shuffle_buffer_size: int = option(100_000, "pairs shuffled together", at_least=1)
    maximum_features_length: int = option(80, "training pairs with longer sources (pieces) "
                                          "are dropped", at_least=1)
    maximum_labels_length: int = option(80, "training pairs with longer targets (pieces) "
                                        "are dropped", at_least=1)

    # --- model
    encoder_cell: str = option("gru", "the encoder's recurrent cell", scope="model",
                               choices=CELL_NAMES)
    decoder_cell: str = option("gru", "the decoder's recurrent cell", scope="model",
                               choices=CELL_NAMES)
    embedding_size: int = option(256, "piece embedding width", scope="model", at_least=1)
    encoder_units: int = option(256, "encoder units per direction", scope="model", at_least=1)
    encoder_layers: int = option(1, "stacked bidirectional encoder layers", scope="model",
                                 at_least=1)
    decoder_units: int = option(512, "decoder units", scope="model", at_least=1)
    attention: str = option("bahdanau", "attention: bahdanau (additive) or Luong's dot, "
                            "general, concat", scope="model", choices=ATTENTION_TYPES)
    attention_units: int = option(256, "units of the attention layer", scope="model",
                                  at_least=1)
    dropout: float = option(0.3, "dropout on embeddings and encoder/decoder outputs",
                            scope="model", at_least=0, below=1)
    deep_output: bool = option(True, "predict from [a_t; c_t; E y_{t-1}] (else from a_t)",
                               scope="model")

    # --- training
    init_from_run: str = option("", "start from this run's best weights and vocabularies")
    epochs: int = 20
    learning_rate: float = 1e-3
    clip_norm: float = 1.0
    label_smoothing: float = option(0.1, "label smoothing of the cross-entropy", at_least=0,
                                    below=1)
    lr_schedule: str = "plateau"
    lr_decay_patience: int = 1
    lr_decay_start_epoch: int = 5
    min_learning_rate: float = 1.5e-5
    monitor: str = "val_bleu"  # greedy BLEU on validation, computed each epoch
    monitor_mode: str = "max"
    bleu_every_epochs: int = option(1, "compute validation BLEU (greedy) every N epochs; 0: "
                                    "never", at_least=0)
    bleu_max_sentences: int = option(0, "validation BLEU on the first N sentences; 0: all",
                                     at_least=0)

    # --- decoding
    beam_width: int = option(5, "beam width of beam search (1: greedy)", scope="inference",
                             at_least=1)
    length_penalty: float = option(0.6, "GNMT length penalty alpha; 0 disables",
                                   scope="inference", at_least=0)
    maximum_decoding_length: int = option(100, "target pieces a translation may have",
                                          scope="inference", at_least=1)
    maximum_source_length: int = option(400, "inference truncates longer sources (pieces)",
                                        scope="inference", at_least=1)
    heatmap_sentences: int = option(4, "attention heatmaps evaluate writes", scope="inference",
                                    at_least=0)

    def check_monitoring(self) -> None:
        """ValueError when `monitor` asks for a validation BLEU that training cannot
        compute (checked by train before any work)."""
        has_validation = bool(self.valid_source or self.tfds_name)
        if self.monitor == "val_bleu" and not (has_validation and self.bleu_every_epochs):
            raise ValueError(
                "--monitor val_bleu needs validation data (--valid-source/--valid-target or "
                "--tfds-name) and --bleu-every-epochs >= 1; otherwise give --monitor val_loss "
                "(or loss without validation data)"
            )
