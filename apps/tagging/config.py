"""Defaults of the tagging app; every field is a command-line flag."""

from __future__ import annotations

import dataclasses

from apps.common.config import TrainConfig
from pipelines.tag_schemes import normalize_scheme

TASKS = ("ner", "chunk", "pos")
DECODERS = ("crf", "softmax")
DECODINGS = ("viterbi", "posterior")
CHAR_ENCODERS = ("lstm", "cnn", "none")
FILE_FORMATS = ("auto", "conll", "conllu")
BATCH_TYPES = ("examples", "tokens")

#: Per task: the default TFDS dataset, its tag field, and whether tags mark entity spans
#: (scored as entities with seqeval) or are one label per token (scored by accuracy).
TASK_DEFAULTS = {
    "ner": {"tfds_name": "conll2003", "tag_field": "ner", "entities": True},
    "chunk": {"tfds_name": "conll2003", "tag_field": "chunks", "entities": True},
    "pos": {"tfds_name": "universal_dependencies/en_ewt", "tag_field": "upos", "entities": False},
}


@dataclasses.dataclass
class TaggingConfig(TrainConfig):
    task: str = "ner"  # ner | chunk | pos

    # Data: TFDS `tfds_name` (default by task) unless `train_file` names local files.
    tfds_name: str = ""  # "" = conll2003 for ner/chunk, universal_dependencies/en_ewt for pos
    tfds_data_dir: str = ""
    train_file: str = ""  # CoNLL column file (CoNLL-2000/2003) or CoNLL-U (.conllu), .gz ok
    dev_file: str = ""
    test_file: str = ""
    file_format: str = "auto"  # auto (by extension) | conll | conllu
    columns: list[str] = dataclasses.field(default_factory=list)  # CoNLL column names; [] = by count
    tag_field: str = ""  # "" = ner / chunks / upos by task (any column name, e.g. xpos)
    dev_fraction: float = 0.1  # carved from train when there is no dev split or file
    max_train_sentences: int = 0  # 0: all (fewer for quick experiments)

    # Tag schemes: input read as `input_scheme`, trained in `tag_scheme`, always scored on
    # the spans of the original tags.
    input_scheme: str = "auto"  # auto | iob1 | bio | bioes | io
    tag_scheme: str = "bioes"  # bio | bioes | io (entity tasks only)

    # Words and characters.
    lowercase: bool = True  # word lookup on lower-cased words (characters keep the case)
    normalize_digits: bool = True  # every digit -> 0 for the word lookup
    min_word_frequency: int = 1
    max_vocabulary_size: int = 0  # 0: no limit
    max_word_length: int = 30  # characters per word seen by the character encoder
    word_dropout: float = 0.05  # training words replaced by the unknown word
    rare_word_dropout: float = 0.0  # alpha: a word seen c times is also replaced w.p. alpha/(alpha+c)

    # Model: embeddings + character features -> stacked bidirectional recurrent layers ->
    # softmax or linear-chain CRF.
    word_embedding_size: int = 100
    casing_embedding_size: int = 8  # word-shape feature (Reimers & Gurevych 2017); 0: off
    char_encoder: str = "lstm"  # lstm (Lample et al. 2016) | cnn (Ma & Hovy 2016) | none
    char_embedding_size: int = 25
    char_units: int = 25  # per direction (lstm) or filters (cnn)
    char_kernel_size: int = 3
    # Contextual string features (Akbik et al. 2018): forward and backward character LMs
    # trained on the training sentences before the tagger; their states at word boundaries
    # are word features. 0 units: off.
    char_lm_units: int = 0
    char_lm_embedding_size: int = 32
    char_lm_epochs: int = 5
    char_lm_minutes: float = 0.0  # wall-time cap of both LMs' training together; 0: none
    cell: str = "lstm"  # any name of layers.CELL_NAMES (main and character layers)
    units: int = 100  # per direction
    num_layers: int = 1
    dropout: float = 0.5  # on the word representation and on the recurrent output
    recurrent_dropout: float = 0.0  # variational dropout on the recurrent state
    decoder: str = "crf"  # crf | softmax
    crf_constraints: bool = True  # forbid transitions invalid in `tag_scheme`
    decoding: str = "viterbi"  # viterbi (most probable path) | posterior (most expected correct tags)

    # Batching (OpenNMT-tf names): batch_size counts tokens when batch_type is "tokens".
    batch_type: str = "examples"
    batch_size: int = 32
    length_bucket_width: int = 5
    eval_batch_size: int = 256

    # Optimisation.
    epochs: int = 30
    learning_rate: float = 1e-3
    learning_rate_decay: float = 0.05  # epoch e trains at learning_rate / (1 + decay * e) (Ma & Hovy 2016)
    clip_norm: float = 5.0
    early_stopping_patience: int = 6
    monitor: str = ""  # "" = val_f1 (ner, chunk) or val_accuracy (pos)
    monitor_mode: str = "max"
    max_train_minutes: float = 0.0  # wall-time budget, summed over resumes; 0: no limit

    def __post_init__(self):
        if not self.monitor:
            self.monitor = "val_f1" if self.task_defaults().get("entities", True) else "val_accuracy"

    def task_defaults(self) -> dict:
        return TASK_DEFAULTS.get(self.task, {})

    @property
    def entities(self) -> bool:
        return bool(self.task_defaults()["entities"])

    def resolved_tfds_name(self) -> str:
        return self.tfds_name or self.task_defaults()["tfds_name"]

    def resolved_tag_field(self) -> str:
        return self.tag_field or self.task_defaults()["tag_field"]

    def validate(self) -> None:
        """Raises ValueError naming the option that is out of range."""

        def choice(name, value, options):
            if value not in options:
                flag = "--" + name.replace("_", "-")
                raise ValueError(f"{flag} must be one of {', '.join(options)}; got {value!r}")

        choice("task", self.task, TASKS)
        choice("decoder", self.decoder, DECODERS)
        choice("decoding", self.decoding, DECODINGS)
        choice("char_encoder", self.char_encoder, CHAR_ENCODERS)
        choice("file_format", self.file_format, FILE_FORMATS)
        choice("batch_type", self.batch_type, BATCH_TYPES)
        if normalize_scheme(self.tag_scheme) == "iob1":
            raise ValueError("--tag-scheme iob1 is read but not trained; use bio, bioes or io")
        if self.input_scheme != "auto":
            normalize_scheme(self.input_scheme)
        for name in ("dropout", "recurrent_dropout", "word_dropout"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"--{name.replace('_', '-')} must be in [0, 1); got {value}")
        if self.rare_word_dropout < 0:
            raise ValueError(f"--rare-word-dropout must be >= 0; got {self.rare_word_dropout}")
        if not 0.0 <= self.dev_fraction < 1.0:
            raise ValueError(f"--dev-fraction must be in [0, 1); got {self.dev_fraction}")
        if self.learning_rate_decay < 0:
            raise ValueError(f"--learning-rate-decay must be >= 0; got {self.learning_rate_decay}")
        if self.char_lm_units < 0 or self.char_lm_epochs < 1 or self.char_lm_minutes < 0:
            raise ValueError("--char-lm-units and --char-lm-minutes must be >= 0, --char-lm-epochs >= 1")
        if self.num_layers < 1:
            raise ValueError(f"--num-layers must be at least 1; got {self.num_layers}")
        if (self.dev_file or self.test_file) and not self.train_file:
            raise ValueError("--dev-file/--test-file need --train-file (local data) as well")
