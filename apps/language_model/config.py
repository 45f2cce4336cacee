"""Defaults of the language-model app; every field is a command-line flag."""

from __future__ import annotations

import dataclasses

from apps.common.config import TrainConfig

TOKENIZERS = ("char", "word", "sentencepiece")
TRAINING_MODES = ("stateful", "stateless")
SMOOTHINGS = ("kneser_ney", "add_k")
PRECISIONS = ("", "mixed_bfloat16", "mixed_float16")


@dataclasses.dataclass
class LanguageModelConfig(TrainConfig):
    # Data. Local files win over TFDS: `train_file` (+ `valid_file`, `test_file`), or one
    # `text_file` whose last `valid_fraction` (and `test_fraction`) of characters are held
    # out. Without files, the TFDS dataset `tfds_name` (train/validation/test splits of
    # one text each, e.g. tiny_shakespeare). Files may be gzip-compressed.
    train_file: str = ""
    valid_file: str = ""
    test_file: str = ""
    text_file: str = ""
    valid_fraction: float = 0.1
    test_fraction: float = 0.0
    tfds_name: str = "tiny_shakespeare"
    tfds_data_dir: str = ""

    # Tokens. char: every Unicode character; word: whitespace-separated words with a
    # newline read as the token `<eos>` (Mikolov's PTB convention); sentencepiece: pieces
    # trained on the training split, one `</s>` per line.
    tokenizer: str = "char"  # char | word | sentencepiece
    vocab_size: int = 0  # word: most frequent kept (0: all); sentencepiece: pieces (0: 4000)
    sentencepiece_type: str = "unigram"  # unigram | bpe
    lowercase: bool = False

    # Model: embedding, stacked recurrent layers, softmax over the vocabulary.
    cell: str = "lstm"  # any name of layers.CELL_NAMES
    num_layers: int = 2
    units: int = 256
    embedding_size: int = 0  # 0: `units`
    tie_embeddings: bool = False  # output layer = transposed input embedding (Press & Wolf 2017)
    embedding_dropout: float = 0.0  # drops whole word vectors (Gal & Ghahramani 2016)
    input_dropout: float = 0.0  # variational dropout on the embedded inputs (one mask per window)
    dropout: float = 0.0  # variational dropout between layers and before the softmax
    recurrent_dropout: float = 0.0  # variational dropout on the recurrent state
    recurrent_weight_dropout: float = 0.0  # DropConnect on recurrent kernels (weight drop)
    zoneout_cell: float = 0.0
    zoneout_hidden: float = 0.0
    norm_stabilizer: float = 0.0  # beta of Krueger & Memisevic 2016 on every layer; 0 disables
    # Training precision: '' (float32) | mixed_bfloat16 (fast on CPUs with AMX/AVX512-BF16)
    # | mixed_float16. Weights stay float32; evaluation and sampling always run in float32.
    mixed_precision: str = ""

    # Training: truncated BPTT over `batch_size` contiguous streams with the state carried
    # across windows of `bptt` steps (stateful), or independent shuffled windows that
    # start from a zero state (stateless).
    training_mode: str = "stateful"  # stateful | stateless
    bptt: int = 100
    batch_size: int = 32
    epochs: int = 20
    learning_rate: float = 2e-3
    clip_norm: float = 1.0  # clip_gradients: global gradient norm
    lr_decay_factor: float = 0.5  # learning-rate decay on a validation plateau; 1 disables
    lr_decay_patience: int = 0  # epochs without improvement before decaying
    min_learning_rate: float = 1e-5
    max_train_minutes: float = 0.0  # wall-time budget, summed over resumes; 0: no limit
    max_train_tokens: int = 0  # use only the first tokens of the training split; 0: all
    monitor: str = "val_cross_entropy"  # nats per token on the validation windows

    # Evaluation: the whole split with the state carried through `eval_batch_size`
    # contiguous streams. 1 (the default) is one pass over the split, the standard
    # figure; more streams are faster, but each extra stream starts from a zero state in
    # the middle of the text, which a stateful-trained model may handle badly.
    eval_batch_size: int = 1
    eval_bptt: int = 1000
    ngram_order: int = 3  # count-based baseline reported beside the RNN; 0 disables
    ngram_smoothing: str = "kneser_ney"  # kneser_ney | add_k
    ngram_discount: float = 0.75  # Kneser-Ney absolute discount
    ngram_add_k: float = 0.01

    @property
    def embedding_dim(self) -> int:
        return self.embedding_size or self.units

    def validate(self) -> None:
        """Raises ValueError naming the option that is out of range."""
        if self.tokenizer not in TOKENIZERS:
            raise ValueError(f"--tokenizer must be one of {TOKENIZERS}, got {self.tokenizer!r}")
        if self.training_mode not in TRAINING_MODES:
            raise ValueError(
                f"--training-mode must be one of {TRAINING_MODES}, got {self.training_mode!r}"
            )
        if self.ngram_smoothing not in SMOOTHINGS:
            raise ValueError(
                f"--ngram-smoothing must be one of {SMOOTHINGS}, got {self.ngram_smoothing!r}"
            )
        for name in ("num_layers", "units", "bptt", "batch_size", "eval_batch_size", "eval_bptt"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}"
                )
        if not 0.0 <= self.valid_fraction < 1.0 or not 0.0 <= self.test_fraction < 1.0:
            raise ValueError("--valid-fraction and --test-fraction must be in [0, 1)")
        if self.valid_fraction + self.test_fraction >= 1.0:
            raise ValueError("--valid-fraction + --test-fraction must leave text to train on")
        if self.mixed_precision not in PRECISIONS:
            raise ValueError(
                f"--mixed-precision must be one of {PRECISIONS}, got {self.mixed_precision!r}"
            )
        if self.training_mode == "stateful" and self.strategy != "default":
            raise ValueError(
                "stateful truncated BPTT keeps one state per stream on one device; use "
                "--strategy default, or --training-mode stateless for multi-device training"
            )
