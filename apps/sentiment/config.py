"""Options of the sentiment app; every field is a command-line flag."""

from __future__ import annotations

import dataclasses

from apps.common.config import TrainConfig, option
from layers.cell_names import CELL_NAMES

TOKENIZERS = ("words", "sentencepiece")
POOLINGS = ("last", "max", "mean", "max_mean")
BATCH_TYPES = ("examples", "tokens")


@dataclasses.dataclass
class SentimentConfig(TrainConfig):
    # Data: TFDS `tfds_name` unless `data_dir` names local files.
    data_dir: str = option(
        "", "local data instead of TFDS: an aclImdb folder, or a folder holding train and "
        "test files (JSONL/CSV/TSV with a label and a text column, optionally .gz)",
        scope="data")
    test_file: str = option("", "score this file (JSONL/CSV/TSV of label and text) as the "
                            "test split instead of the data's own", scope="data")
    tfds_name: str = option("imdb_reviews", "the TFDS dataset (without --data-dir)", scope="data")
    tfds_data_dir: str = option("", "where TFDS keeps prepared datasets (none: its default)",
                                scope="data")
    valid_fraction: float = option(
        0.1, "share of the training split held out for validation (the test split is never "
        "trained on)", scope="data", at_least=0, below=1)
    max_train_examples: int = option(0, "use only this many training reviews; 0: all",
                                     scope="data", at_least=0)
    max_test_examples: int = option(0, "score only this many test reviews; 0: all",
                                    scope="data", at_least=0)

    # Tokenisation (inside the graph, saved in the run directory and the export).
    tokenizer: str = option("words", "words (lower-cased words) or sentencepiece (pieces "
                            "trained on the training reviews)", scope="model", choices=TOKENIZERS)
    vocab_size: int = option(15_000, "words: the most frequent kept; sentencepiece: pieces",
                             scope="model", at_least=10)
    sentencepiece_type: str = option("unigram", "SentencePiece model type", scope="model",
                                     choices=("unigram", "bpe"))
    min_frequency: int = option(2, "words seen fewer times in training are out of vocabulary",
                                scope="model", at_least=1)
    max_length: int = option(2_000, "tokens kept from the start of a review (train, evaluation "
                             "and serving); 0: all", scope="model", at_least=0)

    # Model (defaults: the best configuration measured on IMDB, see README.md).
    embedding_size: int = option(128, "token embedding width", scope="model", at_least=1)
    embedding_dropout: float = option(0.5, "drops whole token vectors (one draw per token)",
                                      scope="model", at_least=0, below=1)
    cell: str = option("gru", "the recurrent cell", scope="model", choices=CELL_NAMES)
    units: int = option(64, "units per direction of each recurrent layer", scope="model",
                        at_least=1)
    num_layers: int = option(1, "stacked recurrent layers", scope="model", at_least=1)
    bidirectional: bool = option(True, "read reviews in both directions", scope="model")
    dropout: float = option(0.0, "variational input dropout inside the cell", scope="model",
                            at_least=0, below=1)
    recurrent_dropout: float = option(0.0, "variational dropout on the recurrent state",
                                      scope="model", at_least=0, below=1)
    pooling: str = option("max_mean", "how the states become one vector (masked, over real "
                          "tokens)", scope="model", choices=POOLINGS)
    segment_length: int = option(0, "> 0: run the recurrent layers over chunks of this many "
                                 "tokens and pool over all of them", scope="model", at_least=0)
    output_dropout: float = option(0.3, "dropout before the output layer", scope="model",
                                   at_least=0, below=1)

    # Batching (OpenNMT-tf names): batch_size counts tokens when batch_type is "tokens".
    batch_type: str = option("tokens", "whether --batch-size counts reviews (examples) or "
                             "tokens", choices=BATCH_TYPES)
    batch_size: int = 12_000
    length_bucket_width: int = option(32, "reviews whose lengths fall in one bucket of this "
                                      "width are batched together", at_least=1)
    shuffle_buffer: int = option(25_000, "reviews shuffled together", at_least=1)

    # Optimisation.
    epochs: int = 4
    learning_rate: float = 2e-3
    clip_norm: float = 1.0
    monitor: str = "val_accuracy"

    # Language-model pretraining of the embedding and first recurrent layer on the training
    # reviews (Dai & Le 2015), in RUN_DIR/pretrain/, before the classifier; 0: off.
    pretrain_epochs: int = option(0, "epochs of language-model pretraining of the embedding "
                                  "and first layer (Dai & Le 2015); 0: off", scope="model",
                                  at_least=0)
    pretrain_learning_rate: float = option(0.0, "pretraining learning rate; 0: "
                                           "--learning-rate", at_least=0)
    pretrain_sampled: int = option(1024, "sampled-softmax negatives per pretraining batch",
                                   at_least=1)

    def validate(self) -> None:
        """Raises ValueError naming the options that do not fit together."""
        if self.pretrain_epochs and self.segment_length:
            raise ValueError("--pretrain-epochs needs whole reviews: set --segment-length 0")
        if self.pooling == "last" and self.segment_length > 0:
            raise ValueError("--pooling last needs the whole review: set --segment-length 0")
        if self.batch_type == "tokens" and not 0 < self.max_length <= self.batch_size:
            raise ValueError(
                f"--batch-type tokens needs 0 < --max-length <= --batch-size (the token "
                f"budget), got max_length={self.max_length}, batch_size={self.batch_size}"
            )
