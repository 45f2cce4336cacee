"""Defaults of the translation app; every field is a command-line flag.

Option names follow OpenNMT-tf where it has one (`batch_type`, `length_bucket_width`,
`beam_width`, `length_penalty`, `scheduled_sampling_type`, `scheduled_sampling_k`,
`maximum_features_length`, `maximum_labels_length`, `label_smoothing`).
"""

from __future__ import annotations

import dataclasses

from apps.common.config import TrainConfig

ATTENTION_TYPES = ("bahdanau", "luong_dot", "luong_general", "luong_concat")
VOCABULARY_TYPES = ("joint", "separate")
# "bucket": length buckets (OpenNMT-tf); the others are Morishita et al. (2017)'s strategies.
BATCH_STRATEGIES = ("bucket", "shuffle", "src", "tgt", "src_tgt", "tgt_src")


@dataclasses.dataclass
class TranslationConfig(TrainConfig):
    # --- data: local parallel files (line i of source translates line i of target) ...
    train_source: str = ""
    train_target: str = ""
    valid_source: str = ""
    valid_target: str = ""
    test_source: str = ""
    test_target: str = ""
    # ... or a TFDS translation set (used when no local train files are given).
    tfds_name: str = ""  # e.g. wmt14_translate/de-en, ted_hrlr_translate/pt_to_en
    tfds_data_dir: str = ""
    source_language: str = "en"  # TFDS feature names of the two sides
    target_language: str = "de"
    tfds_train_split: str = "train"
    tfds_valid_split: str = "validation"
    tfds_test_split: str = "test"
    max_train_examples: int = 0  # 0: all

    # --- tokenisation (SentencePiece, trained on the training split)
    lowercase: bool = False  # lowercase both sides (and inputs at inference), as WMT16/17 multimodal task 1
    vocabulary: str = "joint"  # joint | separate
    vocab_size: int = 8000  # per model (joint: shared by both sides)
    sentencepiece_model_type: str = "unigram"  # unigram | bpe
    sentencepiece_input_sentences: int = 200_000  # sentences sampled to train it

    # --- batching
    batch_type: str = "tokens"  # examples | tokens (batch_size then counts target tokens)
    batch_size: int = 4096
    batch_strategy: str = "bucket"  # bucket | Morishita et al. 2017: shuffle | src | tgt | src_tgt | tgt_src
    length_bucket_width: int = 2  # batch_strategy=bucket: width of a length bucket
    shuffle_buffer_size: int = 100_000
    maximum_features_length: int = 80  # training pairs longer than these are dropped
    maximum_labels_length: int = 80

    # --- model
    encoder_cell: str = "gru"  # any name of layers.CELL_NAMES
    decoder_cell: str = "gru"
    embedding_size: int = 256
    encoder_units: int = 256  # per direction
    encoder_layers: int = 1
    decoder_units: int = 512
    attention: str = "bahdanau"  # bahdanau | luong_dot | luong_general | luong_concat
    attention_units: int = 256
    dropout: float = 0.3  # embeddings and encoder/decoder outputs
    deep_output: bool = True  # predict from [a_t; c_t; E y_{t-1}] (else from a_t)

    # --- training
    init_from_run: str = ""  # start from this run's best weights and its vocabularies
    mixed_precision: str = ""  # '' (float32) | mixed_bfloat16 (fast on CPUs with AMX/AVX512-BF16) | mixed_float16
    epochs: int = 20
    learning_rate: float = 1e-3
    clip_norm: float = 1.0
    label_smoothing: float = 0.1
    # Scheduled sampling (Bengio et al. 2015): P(read the true token) at training step i,
    # constant: k; linear: max(min, k - c * i); exponential: k ** i; inverse_sigmoid:
    # k / (k + exp(i / k)). '' trains with teacher forcing only.
    scheduled_sampling_type: str = ""
    scheduled_sampling_k: float = 1.0
    scheduled_sampling_c: float = 0.0  # linear: decay per step
    scheduled_sampling_min_probability: float = 0.0  # floor of the read probability
    scheduled_sampling_prediction: str = "sample"  # sample | argmax: the token fed back
    lr_decay_factor: float = 0.5  # multiply the rate when `monitor` stalls; 1 disables
    lr_decay_patience: int = 1  # epochs without improvement before decaying; 0 disables
    lr_decay_start_epoch: int = 5  # no decay for a stall in the first epochs (0-based)
    max_train_minutes: float = 0.0  # wall-time budget, summed over resumes; 0: no limit
    monitor: str = "val_bleu"  # greedy BLEU on validation, computed each epoch
    monitor_mode: str = "max"
    bleu_every_epochs: int = 1  # 0: no validation BLEU during training
    bleu_max_sentences: int = 0  # 0: the whole validation set

    # --- decoding
    beam_width: int = 5
    length_penalty: float = 0.6  # GNMT alpha; 0 disables
    maximum_decoding_length: int = 100  # target pieces per translation
    maximum_source_length: int = 400  # inference truncates longer sources (pieces)
    heatmap_sentences: int = 4  # attention heatmaps written by evaluate
