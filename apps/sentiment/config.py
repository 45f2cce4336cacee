"""Defaults of the sentiment app; every field is a command-line flag."""

from __future__ import annotations

import dataclasses

from apps.common.config import TrainConfig

TOKENIZERS = ("words", "sentencepiece")
POOLINGS = ("last", "max", "mean", "max_mean")
BATCH_TYPES = ("examples", "tokens")


@dataclasses.dataclass
class SentimentConfig(TrainConfig):
    # Data: TFDS `tfds_name` unless `data_dir` names local files (an aclImdb folder, or a
    # folder holding train/test files in JSONL/CSV/TSV, optionally gzip-compressed).
    data_dir: str = ""
    tfds_name: str = "imdb_reviews"
    tfds_data_dir: str = ""
    validation_fraction: float = 0.1  # carved from train; the test split is never used to train
    max_train_examples: int = 0  # 0: all (a smaller number for quick experiments)
    max_test_examples: int = 0  # 0: the whole test split

    # Tokenisation (inside the graph, saved in the run directory and the export).
    tokenizer: str = "words"  # words | sentencepiece
    vocab_size: int = 15_000  # words: most frequent kept; sentencepiece: pieces
    sentencepiece_type: str = "unigram"  # unigram | bpe
    min_frequency: int = 2  # words seen fewer times in training are out-of-vocabulary
    max_length: int = 2_000  # tokens kept from the start of a review (train, eval, serving); 0: all

    # Model (defaults: the best configuration measured on IMDB, see README.md).
    embedding_size: int = 128
    embedding_dropout: float = 0.5  # drops whole token vectors (one draw per token)
    cell: str = "gru"  # any name of layers.CELL_NAMES
    units: int = 64
    num_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.0  # variational input dropout inside the cell
    recurrent_dropout: float = 0.0  # variational dropout on the recurrent state
    pooling: str = "max_mean"  # last | max | mean | max_mean (masked, over real tokens)
    segment_length: int = 0  # >0: run the RNN over chunks of this many tokens, pool over all
    output_dropout: float = 0.3

    # Batching (OpenNMT-tf names): batch_size counts tokens when batch_type is "tokens".
    batch_type: str = "tokens"  # examples | tokens
    batch_size: int = 12_000
    length_bucket_width: int = 32
    shuffle_buffer: int = 25_000

    # Optimisation.
    epochs: int = 4
    learning_rate: float = 2e-3
    clip_norm: float = 1.0
    monitor: str = "val_accuracy"

    # Language-model pretraining of the embedding and first recurrent layer on the training
    # reviews (Dai & Le 2015), in RUN_DIR/pretrain/, before the classifier; 0: off.
    pretrain_epochs: int = 0
    pretrain_learning_rate: float = 0.0  # 0: learning_rate
    pretrain_sampled: int = 1024  # sampled-softmax negatives per batch

    def validate(self) -> None:
        """Raises ValueError naming the option that is out of range."""
        if self.tokenizer not in TOKENIZERS:
            raise ValueError(f"--tokenizer must be one of {TOKENIZERS}, got {self.tokenizer!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"--pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.batch_type not in BATCH_TYPES:
            raise ValueError(f"--batch-type must be one of {BATCH_TYPES}, got {self.batch_type!r}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(
                f"--validation-fraction must be in [0, 1), got {self.validation_fraction}"
            )
        if self.pretrain_epochs < 0 or self.pretrain_sampled < 1:
            raise ValueError("--pretrain-epochs must be >= 0 and --pretrain-sampled >= 1")
        if self.pretrain_epochs and self.segment_length:
            raise ValueError("--pretrain-epochs needs whole reviews: set --segment-length 0")
        if self.pooling == "last" and self.segment_length > 0:
            raise ValueError("--pooling last needs the whole review: set --segment-length 0")
        if self.vocab_size < 10:
            raise ValueError(f"--vocab-size must be at least 10, got {self.vocab_size}")
        if self.batch_type == "tokens" and not 0 < self.max_length <= self.batch_size:
            raise ValueError(
                f"--batch-type tokens needs 0 < --max-length <= --batch-size (the token "
                f"budget), got max_length={self.max_length}, batch_size={self.batch_size}"
            )
        if self.num_layers < 1:
            raise ValueError(f"--num-layers must be at least 1, got {self.num_layers}")
