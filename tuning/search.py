"""The search launcher: a hypermodel, an oracle and a keras-tuner `Tuner`, resumable and
distributable.

Layout of a search directory:

    RUN_DIR/search.json        the resolved search configuration (checked on resume)
    RUN_DIR/sessions.jsonl     two lines per `search` invocation (event "start", then "end"
                               with its wall time and trial counts)
    RUN_DIR/project/           keras-tuner's project: oracle.json, trial_*/trial.json
                               (values, metrics, status), trial checkpoints

Resuming: rerunning the same command with the same `--run-dir` reloads the project
(`overwrite=False`): finished trials are kept and never run again, a trial that was
running when the process died is run again, and the search continues until `max_trials`
(or `per_variant` trials for every cell) are done. Raising `--max-trials` /
`--per-variant` extends a finished search; changing the space or the task is refused.

Distributed (keras-tuner's chief/worker mode): start the same command once with
`KERASTUNER_TUNER_ID=chief` and once per worker with `KERASTUNER_TUNER_ID=tuner0`,
`tuner1`, ..., all with `KERASTUNER_ORACLE_IP` and `KERASTUNER_ORACLE_PORT` naming the
chief's address and the same `--run-dir` on a shared file system. The chief serves the
oracle and runs no trials; each worker asks it for trials until none are left.
"""

from __future__ import annotations

import datetime
import gc
import json
import logging
import os
import platform
import random
import socket
import time
from pathlib import Path
from typing import Any

import keras
import keras_tuner as kt
import numpy as np
import tensorflow as tf

from apps.common.config import write_atomically
from tuning.adapters import make_adapter
from tuning.config import STRATEGIES, SearchConfig
from tuning.hypermodel import AdapterHyperModel
from tuning.oracles import make_oracle

PROJECT = "project"


def project_dir(config: SearchConfig) -> Path:
    return Path(config.run_dir) / PROJECT


def make_distribution_strategy(name: str) -> tf.distribute.Strategy | None:
    """The `tf.distribute` strategy of each trial's model (handed to the Tuner
    constructor): `default` (none), `mirrored` (all local GPUs; the CPU when there is
    none) or `multi_worker` (MultiWorkerMirroredStrategy configured by TF_CONFIG)."""
    if name == "default":
        return None
    if name == "mirrored":
        gpus = [device.name for device in tf.config.list_logical_devices("GPU")]
        devices = gpus or [device.name for device in tf.config.list_logical_devices("CPU")]
        # Without GPUs, reduce through one device: CPU collectives of several strategies in
        # one process can collide on their instance keys (shape-mismatch aborts).
        cross_device_ops = None if gpus else tf.distribute.ReductionToOneDevice()
        return tf.distribute.MirroredStrategy(devices=devices, cross_device_ops=cross_device_ops)
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy multi_worker needs the TF_CONFIG environment variable")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")


class _RecordingTuner:
    """Mixin of the tuners: seeds every trial (`trial_seed` + trial number), adds the
    trial's wall time (build, training, evaluation) to the metrics it reports, and writes
    trial_*/worker.json (which tuner ran it, where, when)."""

    trial_seed = 0
    _current_seed = 0

    def run_trial(self, trial, *args, **kwargs):
        number = int(trial.trial_id) if str(trial.trial_id).isdigit() else 0
        self._current_seed = self.trial_seed + number
        start = time.perf_counter()
        results = super().run_trial(trial, *args, **kwargs)
        elapsed = time.perf_counter() - start
        for result in results if isinstance(results, list) else [results]:
            if isinstance(result, dict):
                result["trial_wall_time_s"] = float(elapsed)
        record = {
            "tuner_id": self.tuner_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "finished": datetime.datetime.now().isoformat(timespec="seconds"),
            "wall_time_s": round(elapsed, 2),
            "seed": self._current_seed,
        }
        Path(self.get_trial_dir(trial.trial_id), "worker.json").write_text(
            json.dumps(record) + "\n"
        )
        return results

    def _build_hypermodel(self, hp):
        seed_trial(self._current_seed, tensorflow=self.hypermodel.clear_session)
        return super()._build_hypermodel(hp)

    def _try_build(self, hp):
        if self.hypermodel.clear_session:
            return super()._try_build(hp)  # keras.backend.clear_session(), then build
        # keras-tuner clears the Keras session before every build, which also drops the TF
        # resources of input pipelines made once for all trials (an app's in-graph
        # SentencePiece tokenizer): hypermodels with clear_session=False skip that step.
        gc.collect()
        model = self._build_hypermodel(hp)
        if not isinstance(model, keras.Model):
            raise kt.errors.FatalTypeError(f"the hypermodel built {type(model)}, not a keras.Model")
        return model


def seed_trial(seed: int, tensorflow: bool = True) -> None:
    """`keras.utils.set_random_seed(seed)`; with `tensorflow=False` everything but
    `tf.random.set_seed`, which clears TensorFlow's kernel caches and with them the
    resources of input pipelines made before (tf_text's SentencePiece model: the next
    batch fails with "Resource ... SentencepieceOp ... does not exist")."""
    if tensorflow:
        keras.utils.set_random_seed(seed)
        return
    random.seed(seed)
    np.random.seed(seed)
    from keras.src.backend.common import global_state
    from keras.src.random.seed_generator import GLOBAL_SEED_GENERATOR
    from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED

    global_state.set_global_attribute(GLOBAL_RANDOM_SEED, seed)  # Keras initializers, dropout
    global_state.set_global_attribute(GLOBAL_SEED_GENERATOR, None)


class AblationTuner(_RecordingTuner, kt.Tuner):
    """keras-tuner's `Tuner` with trial seeds and wall times (random/Bayesian oracles)."""


class AblationHyperband(_RecordingTuner, kt.Hyperband):
    """keras-tuner's `Hyperband` (continued trials train on from their parent's weights)
    with trial seeds and wall times, over an oracle of `tuning.oracles`."""

    def __init__(self, oracle: kt.Oracle, **kwargs):
        # kt.Hyperband.__init__ only makes its own oracle: pass ours to kt.Tuner instead.
        kt.Tuner.__init__(self, oracle=oracle, **kwargs)


def make_hypermodel(config: SearchConfig) -> AdapterHyperModel:
    adapter = make_adapter(
        config.task,
        config.task_config,
        Path(config.run_dir) / "task",
        seed=config.seed,
        verbose=config.verbose,
        strategy=config.strategy,
    )
    return AdapterHyperModel(
        adapter, config.space, config.epochs, config.early_stopping_patience, config.verbose
    )


def make_tuner(config: SearchConfig, hypermodel: AdapterHyperModel | None = None) -> kt.Tuner:
    """The tuner of `config` over `config.run_dir/project` (reloaded if it exists)."""
    hypermodel = hypermodel or make_hypermodel(config)
    objective = hypermodel.objective
    _reload_after_a_kill(project_dir(config))
    oracle = make_oracle(
        config.oracle,
        objective,
        max_trials=config.max_trials,
        seed=config.seed,
        max_consecutive_failed_trials=config.max_consecutive_failed_trials,
        per_variant=config.per_variant,
        cells=config.space.cells,
        max_epochs=config.epochs,
        hyperband_factor=config.hyperband_factor,
        hyperband_iterations=config.hyperband_iterations,
        initial_points=config.initial_points,
    )
    tuner_class = AblationHyperband if config.oracle == "hyperband" else AblationTuner
    tuner = tuner_class(
        oracle=oracle,
        hypermodel=hypermodel,
        directory=str(config.run_dir),
        project_name=PROJECT,
        overwrite=False,
        executions_per_trial=config.executions_per_trial,
        distribution_strategy=make_distribution_strategy(config.strategy),
    )
    tuner.trial_seed = config.seed
    return tuner


def _reload_after_a_kill(project: Path) -> None:
    """keras-tuner reloads a project only if the tuner's own file exists, which it first
    writes after the first trial; a process killed before that (but after the oracle saved
    a trial) would start afresh and overwrite that trial. Mark such a project reloadable."""
    tuner_file = project / f"{os.environ.get('KERASTUNER_TUNER_ID', 'tuner0')}.json"
    if (project / "oracle.json").exists() and not tuner_file.exists():
        tuner_file.write_text("{}")  # keras-tuner's BaseTuner state is empty


#: Keys of search.json that describe rather than define the search.
RECORDED = ("created", "objective", "direction")


def check_resume(config: SearchConfig, recorded: dict | None = None) -> None:
    """Writes search.json on the first run; later runs must match it (except MUTABLE);
    `recorded` values (the objective...) are stored alongside, not compared."""
    path = Path(config.run_dir) / "search.json"
    current = config.to_dict()
    if path.exists():
        saved = json.loads(path.read_text(encoding="utf-8"))
        differences = [
            f"{key}: saved {saved.get(key)!r}, now {current.get(key)!r}"
            for key in sorted(set(saved) | set(current))
            if key not in (*SearchConfig.MUTABLE, *RECORDED)
            and _normalise(saved.get(key)) != _normalise(current.get(key))
        ]
        if differences:
            raise ValueError(
                f"{config.run_dir} holds a different search; resume it with the same options "
                "or use another --run-dir. Differences: " + "; ".join(differences)
            )
    saved_now = {
        **current,
        **(recorded or {}),
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    if path.exists():
        saved_now["created"] = json.loads(path.read_text(encoding="utf-8")).get("created")
    write_atomically(path, json.dumps(saved_now, indent=2, sort_keys=True) + "\n")


def _normalise(value):
    return json.loads(json.dumps(value))


def trial_statuses(tuner: kt.Tuner) -> dict[str, int]:
    counts: dict[str, int] = {}
    for trial in tuner.oracle.trials.values():
        counts[trial.status] = counts.get(trial.status, 0) + 1
    return counts


def machine_description() -> str:
    gpus = tf.config.list_physical_devices("GPU")
    device = f"{len(gpus)} GPU" if gpus else "CPU only"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {device}"


def _log_session(config: SearchConfig, line: dict) -> None:
    with open(Path(config.run_dir) / "sessions.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")


def run_search(config: SearchConfig, command: str = "") -> dict[str, Any]:
    """Runs (or resumes) the search of `config`; returns a summary of its trials."""
    Path(config.run_dir).mkdir(parents=True, exist_ok=True)
    role = os.environ.get("KERASTUNER_TUNER_ID", "tuner0")
    start = time.time()
    hypermodel = make_hypermodel(config)
    objective = hypermodel.objective
    check_resume(config, {"objective": objective.name, "direction": objective.direction})
    if "chief" not in role:  # the chief serves the oracle and trains nothing
        hypermodel.prepare()
    tuner = make_tuner(config, hypermodel)
    logging.info("search %s (%s): %s", config.run_dir, role, command)
    session = {
        "session": f"{socket.gethostname()}:{os.getpid()}:{start:.0f}",
        "role": role,
        "command": command,
        "start": datetime.datetime.fromtimestamp(start).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "machine": machine_description(),
    }
    _log_session(config, {"event": "start", **session})
    tuner.search(verbose=1)  # the oracle's per-trial summary; fit uses config.verbose
    end = time.time()
    summary: dict[str, Any] = {"role": role, "wall_time_s": round(end - start, 1)}
    if not isinstance(tuner.oracle, kt.Oracle):  # a worker's oracle is a gRPC client
        summary["trials"] = None
    else:
        summary["trials"] = trial_statuses(tuner)
    _log_session(
        config,
        {
            "event": "end",
            **session,
            "end": datetime.datetime.fromtimestamp(end).isoformat(timespec="seconds"),
            "wall_time_s": round(end - start, 1),
            "trials": summary["trials"],
        },
    )
    failed = (summary["trials"] or {}).get("FAILED", 0)
    if failed:
        logging.warning(
            "%d trial(s) FAILED; their messages are in %s/trial_*/trial.json",
            failed,
            project_dir(config),
        )
    return summary
