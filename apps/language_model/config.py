"""Options of the language-model app; every field is a command-line flag."""

from __future__ import annotations

import dataclasses

from apps.common.config import TrainConfig, option
from layers.cell_names import CELL_NAMES

TOKENIZERS = ("char", "word", "sentencepiece")
TRAINING_MODES = ("stateful", "stateless")
SMOOTHINGS = ("kneser_ney", "add_k")


@dataclasses.dataclass
class LanguageModelConfig(TrainConfig):
    # Data. Local files win over TFDS: `train_file` (+ `valid_file`, `test_file`), or one
    # `text_file` whose last `valid_fraction` (and `test_fraction`) of characters are held
    # out. Without files, the TFDS dataset `tfds_name` (train/validation/test splits of
    # one text each, e.g. tiny_shakespeare). Files may be gzip-compressed.
    train_file: str = option("", "training text (plain UTF-8, .gz ok)", scope="data")
    valid_file: str = option("", "validation text", scope="data")
    test_file: str = option("", "test text (scored by evaluate --split test)", scope="data")
    text_file: str = option("", "one text whose last --valid-fraction (and --test-fraction) "
                            "of characters are held out (instead of --train-file)", scope="data")
    valid_fraction: float = option(0.1, "--text-file: share held out for validation",
                                   scope="data", at_least=0, below=1)
    test_fraction: float = option(0.0, "--text-file: share held out for test", scope="data",
                                  at_least=0, below=1)
    tfds_name: str = option("tiny_shakespeare", "the TFDS dataset (without local files)",
                            scope="data")
    tfds_data_dir: str = option("", "where TFDS keeps prepared datasets (none: its default)",
                                scope="data")

    # Tokens. char: every Unicode character; word: whitespace-separated words with a
    # newline read as the token `<eos>` (Mikolov's PTB convention); sentencepiece: pieces
    # trained on the training split, one `</s>` per line.
    tokenizer: str = option("char", "char (every Unicode character), word (whitespace-"
                            "separated, a newline is <eos>) or sentencepiece", scope="model",
                            choices=TOKENIZERS)
    vocab_size: int = option(0, "word: the most frequent kept (0: all); sentencepiece: "
                             "pieces (0: 4000)", scope="model", at_least=0)
    sentencepiece_type: str = option("unigram", "SentencePiece model type", scope="model",
                                     choices=("unigram", "bpe"))
    lowercase: bool = option(False, "lower-case the text before tokenising", scope="model")

    # Model: embedding, stacked recurrent layers, softmax over the vocabulary.
    cell: str = option("lstm", "the recurrent cell", scope="model", choices=CELL_NAMES)
    num_layers: int = option(2, "stacked recurrent layers", scope="model", at_least=1)
    units: int = option(256, "units of each recurrent layer", scope="model", at_least=1)
    embedding_size: int = option(0, "token embedding width; 0: --units", scope="model",
                                 at_least=0)
    tie_embeddings: bool = option(False, "output layer = transposed input embedding "
                                  "(Press & Wolf 2017)", scope="model")
    embedding_dropout: float = option(0.0, "drops whole word vectors (Gal & Ghahramani 2016)",
                                      scope="model", at_least=0, below=1)
    input_dropout: float = option(0.0, "variational dropout on the embedded inputs (one mask "
                                  "a window)", scope="model", at_least=0, below=1)
    dropout: float = option(0.0, "variational dropout between layers and before the softmax",
                            scope="model", at_least=0, below=1)
    recurrent_dropout: float = option(0.0, "variational dropout on the recurrent state",
                                      scope="model", at_least=0, below=1)
    recurrent_weight_dropout: float = option(0.0, "DropConnect on the recurrent kernels "
                                             "(AWD-LSTM weight drop)", scope="model",
                                             at_least=0, below=1)
    zoneout_cell: float = option(0.0, "zoneout of the LSTM cell state", scope="model",
                                 at_least=0, below=1)
    zoneout_hidden: float = option(0.0, "zoneout of the hidden state", scope="model",
                                   at_least=0, below=1)
    norm_stabilizer: float = option(0.0, "beta of the norm-stabilizer penalty (Krueger & "
                                    "Memisevic 2016) on every layer; 0 disables",
                                    scope="model", at_least=0)

    # Training: truncated BPTT over `batch_size` contiguous streams with the state carried
    # across windows of `bptt` steps (stateful), or independent shuffled windows that
    # start from a zero state (stateless).
    training_mode: str = option("stateful", "stateful: truncated BPTT over --batch-size "
                                "contiguous streams, state carried across windows; stateless: "
                                "shuffled windows from a zero state", choices=TRAINING_MODES)
    bptt: int = option(100, "truncation window: steps backpropagated through", at_least=1)
    batch_size: int = 32
    epochs: int = 20
    learning_rate: float = 2e-3
    clip_norm: float = 1.0
    lr_schedule: str = "plateau"
    lr_decay_patience: int = 0
    min_learning_rate: float = 1e-5
    max_train_tokens: int = option(0, "use only the first tokens of the training split; 0: all",
                                   scope="data", at_least=0)
    monitor: str = "val_cross_entropy"  # nats per token on the validation windows

    # Evaluation: the whole split with the state carried through `eval_batch_size`
    # contiguous streams. 1 (the default) is one pass over the split, the standard
    # figure; more streams are faster, but each extra stream starts from a zero state in
    # the middle of the text, which a stateful-trained model may handle badly.
    eval_batch_size: int = option(1, "streams a split is scored in (1: one pass with the state "
                                  "carried, the standard figure)", scope="inference", at_least=1)
    eval_bptt: int = option(1000, "steps a window when scoring", scope="inference", at_least=1)
    ngram_order: int = option(3, "order of the count-based baseline reported beside the model; "
                              "0 disables", scope="inference", at_least=0)
    ngram_smoothing: str = option("kneser_ney", "smoothing of the n-gram baseline",
                                  scope="inference", choices=SMOOTHINGS)
    ngram_discount: float = option(0.75, "Kneser-Ney absolute discount", scope="inference",
                                   at_least=0, at_most=1)
    ngram_add_k: float = option(0.01, "add-k smoothing constant", scope="inference", above=0)

    @property
    def embedding_dim(self) -> int:
        return self.embedding_size or self.units

    def validate(self) -> None:
        """Raises ValueError naming the options that do not fit together."""
        if self.valid_fraction + self.test_fraction >= 1.0:
            raise ValueError("--valid-fraction + --test-fraction must leave text to train on")
        if self.training_mode == "stateful" and self.strategy != "default":
            raise ValueError(
                "stateful truncated BPTT keeps one state per stream on one device; use "
                "--strategy default, or --training-mode stateless for multi-device training"
            )
