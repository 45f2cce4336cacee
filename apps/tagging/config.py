"""Options of the tagging app; every field is a command-line flag."""

from __future__ import annotations

import dataclasses

from apps.common.config import TrainConfig, option
from layers.cell_names import CELL_NAMES

TASKS = ("ner", "chunk", "pos")
DECODERS = ("crf", "softmax")
DECODINGS = ("viterbi", "posterior")
CHAR_ENCODERS = ("lstm", "cnn", "none")
FILE_FORMATS = ("auto", "conll", "conllu")
BATCH_TYPES = ("examples", "tokens")
#: The configurations `compare` trains by default (NAME=KEY:VALUE,... over the config).
COMPARE_VARIANTS = (
    "lstm-crf=",
    "lstm-softmax=decoder:softmax",
    "gru-crf=cell:gru",
    "cifg-crf=cell:cifg",
)

#: Per task: the default TFDS dataset, its tag field, and whether tags mark entity spans
#: (scored as entities with seqeval) or are one label per token (scored by accuracy).
TASK_DEFAULTS = {
    "ner": {"tfds_name": "conll2003", "tag_field": "ner", "entities": True},
    "chunk": {"tfds_name": "conll2003", "tag_field": "chunks", "entities": True},
    "pos": {"tfds_name": "universal_dependencies/en_ewt", "tag_field": "upos", "entities": False},
}


@dataclasses.dataclass
class TaggingConfig(TrainConfig):
    task: str = option("ner", "ner (entities), chunk (phrases) or pos (one tag a word)",
                       scope="model", choices=TASKS)

    # Data: TFDS `tfds_name` (default by task) unless `train_file` names local files.
    tfds_name: str = option("", "the TFDS dataset (none: conll2003 for ner/chunk, "
                            "universal_dependencies/en_ewt for pos)", scope="data")
    tfds_data_dir: str = option("", "where TFDS keeps prepared datasets (none: its default)",
                                scope="data")
    train_file: str = option("", "local training data: a CoNLL column file (CoNLL-2000/2003) "
                             "or CoNLL-U (.conllu), .gz ok", scope="data")
    dev_file: str = option("", "local validation (dev) data, in the training file's format",
                           scope="data")
    test_file: str = option("", "local test data (scored by evaluate --split test)",
                            scope="data")
    file_format: str = option("auto", "format of the local files (auto: by extension)",
                              scope="data", choices=FILE_FORMATS)
    columns: list[str] = option(default_factory=list, help="CoNLL column names, comma-"
                                "separated (none: by the column count)", scope="data")
    tag_field: str = option("", "the column to tag (none: ner / chunks / upos by --task; any "
                            "column name, e.g. xpos)", scope="model")
    valid_fraction: float = option(0.1, "share of the training sentences held out for "
                                   "validation when there is no dev split or file (seeded)",
                                   scope="data", at_least=0, below=1)
    max_train_sentences: int = option(0, "use only the first training sentences; 0: all",
                                      scope="data", at_least=0)

    # Tag schemes: input read as `input_scheme`, trained in `tag_scheme`, always scored on
    # the spans of the original tags.
    input_scheme: str = option("auto", "tag scheme of the files (auto: detected)", scope="data",
                               choices=("auto", "iob1", "bio", "iob2", "bioes", "iobes", "io"))
    tag_scheme: str = option("bioes", "tag scheme the model is trained in (entity tasks); "
                             "scores are always on the spans of the original tags",
                             scope="model", choices=("bio", "iob2", "bioes", "iobes", "io"))

    # Words and characters.
    lowercase: bool = option(True, "look words up lower-cased (characters keep the case)",
                             scope="model")
    normalize_digits: bool = option(True, "every digit -> 0 for the word lookup", scope="model")
    min_word_frequency: int = option(1, "rarer training words are unknown", scope="model",
                                     at_least=1)
    max_vocabulary_size: int = option(0, "keep only the most frequent words; 0: no limit",
                                      scope="model", at_least=0)
    max_word_length: int = option(30, "characters per word the character encoder reads",
                                  scope="model", at_least=1)
    word_dropout: float = option(0.05, "share of training words replaced by the unknown word",
                                 at_least=0, below=1)
    rare_word_dropout: float = option(0.0, "ALPHA: a training word seen c times is also replaced "
                                      "with probability ALPHA / (ALPHA + c) (Kiperwasser & "
                                      "Goldberg 2016); 0: off", at_least=0)

    # Model: embeddings + character features -> stacked bidirectional recurrent layers ->
    # softmax or linear-chain CRF.
    word_embedding_size: int = option(100, "word embedding width", scope="model", at_least=1)
    casing_embedding_size: int = option(8, "width of the word-shape feature (Reimers & "
                                        "Gurevych 2017); 0: off", scope="model", at_least=0)
    char_encoder: str = option("lstm", "character encoder: lstm (Lample et al. 2016), cnn "
                               "(Ma & Hovy 2016) or none", scope="model", choices=CHAR_ENCODERS)
    char_embedding_size: int = option(25, "character embedding width", scope="model",
                                      at_least=1)
    char_units: int = option(25, "character encoder units per direction (lstm) or filters "
                             "(cnn)", scope="model", at_least=1)
    char_kernel_size: int = option(3, "cnn: character window", scope="model", at_least=1)
    # Contextual string features (Akbik et al. 2018): forward and backward character LMs
    # trained on the training sentences before the tagger; their states at word boundaries
    # are word features.
    char_lm_units: int = option(0, "units of the forward and backward character language "
                                "models whose states are word features (contextual string "
                                "features); 0: off", scope="model", at_least=0)
    char_lm_embedding_size: int = option(32, "character embedding width of the language models",
                                         scope="model", at_least=1)
    char_lm_epochs: int = option(5, "training epochs of each character language model",
                                 at_least=1)
    char_lm_minutes: float = option(0.0, "wall-time cap of both language models' training "
                                    "together; 0: none", at_least=0)
    cell: str = option("lstm", "the recurrent cell (main and character layers)", scope="model",
                       choices=CELL_NAMES)
    units: int = option(100, "units per direction of each recurrent layer", scope="model",
                        at_least=1)
    num_layers: int = option(1, "stacked bidirectional layers", scope="model", at_least=1)
    dropout: float = option(0.5, "dropout on the word representation and the recurrent output",
                            scope="model", at_least=0, below=1)
    recurrent_dropout: float = option(0.0, "variational dropout on the recurrent state",
                                      scope="model", at_least=0, below=1)
    decoder: str = option("crf", "output layer: a linear-chain CRF or a per-token softmax",
                          scope="model", choices=DECODERS)
    crf_constraints: bool = option(True, "forbid transitions invalid in --tag-scheme",
                                   scope="model")
    decoding: str = option("viterbi", "CRF decoding: viterbi (the most probable path) or "
                           "posterior (the most expected correct tags)", scope="inference",
                           choices=DECODINGS)

    # Batching (OpenNMT-tf names): batch_size counts tokens when batch_type is "tokens".
    batch_type: str = option("examples", "whether --batch-size counts sentences (examples) or "
                             "tokens", choices=BATCH_TYPES)
    batch_size: int = 32
    length_bucket_width: int = option(5, "sentences whose lengths fall in one bucket of this "
                                      "width are batched together", at_least=1)
    eval_batch_size: int = option(256, "sentences a batch when scoring", scope="inference",
                                  at_least=1)

    # Optimisation.
    epochs: int = 30
    learning_rate: float = 1e-3
    lr_schedule: str = "inverse_time"
    lr_inverse_time_decay: float = 0.05
    clip_norm: float = 5.0
    early_stopping_patience: int = 6
    monitor: str = ""  # none: val_f1 (ner, chunk) or val_accuracy (pos)
    monitor_mode: str = "max"

    def __post_init__(self):
        super().__post_init__()
        if not self.monitor:  # by task: F1 of entities, else accuracy
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
        """Raises ValueError naming the options that do not fit together."""
        if (self.dev_file or self.test_file) and not self.train_file:
            raise ValueError("--dev-file/--test-file need --train-file (local data) as well")
