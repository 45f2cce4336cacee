"""Serving trials: every export of every app (ensembles too) under hostile batches.

The campaign trains tiny runs, builds the ensembles and exports everything through the
apps' command lines, then a checker process (`python -m benchmarks.reliability.serving
PLAN RESULTS`) loads each export once and checks, signature by signature:

- elements: a batch of an empty string, a 100,000-character string, invalid UTF-8, emoji
  and plain text (tagging: token lists of those) gives each element what it gives alone;
- empty: a batch of 0 elements gives outputs of 0 rows;
- batch 1,024: 1,024 elements drawn from the short ones give each what it gives alone;
- threads: 8 threads calling the one loaded export at once (random batches of 1-16
  elements, 3 calls each) get what each element gives alone;
- fresh process: a process without the suite's source (no PYTHONPATH, another working
  folder) loads it with plain `tf.saved_model.load` and gets the same outputs.

and, per run directory: no pickle file in it (the pickle protocol's magic bytes, or a
.pkl/.pickle name), and every `.keras` checkpoint loads with `safe_mode=True`. The
source of the suite is checked for pickle use by tests/benchmarks/test_reliability.py.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import random
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from benchmarks.reliability import tiny
from benchmarks.reliability.common import REPO, Trial, run

#: Exports under test: name -> (app, run names, kind of elements). Two runs: an ensemble.
EXPORTS = {
    "adding": ("adding", ("adding",), "sequences"),
    "sentiment_words": ("sentiment", ("sentiment",), "texts"),
    "sentiment_sentencepiece": ("sentiment", ("sentiment_sentencepiece",), "texts"),
    "sentiment_ensemble": ("sentiment", ("sentiment", "sentiment_sentencepiece"), "texts"),
    "tagging": ("tagging", ("tagging",), "sentences"),
    "tagging_ensemble": ("tagging", ("tagging", "tagging_copy"), "sentences"),
    "translation_joint": ("translation", ("translation",), "texts"),
    "translation_separate": ("translation", ("translation_separate",), "texts"),
    "translation_ensemble": ("translation", ("translation_separate", "translation_separate_copy"), "texts"),
    "language_model_word": ("language_model", ("language_model",), "texts"),
    "language_model_char": ("language_model", ("language_model_char",), "texts"),
}

PICKLE_MAGIC = tuple(bytes([0x80, protocol]) for protocol in range(2, 6))


def _copy_run(work: Path, data: dict[str, Path], name: str) -> Path:
    """A copy of a trained run under another name (an ensemble refuses a run twice)."""
    source = tiny.ensure_run(work, data, name.removesuffix("_copy"))
    copy = source.parent / name
    if not copy.exists():
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns("export", "backup", "logs"))
    return copy


def build_exports(work: Path, data: dict[str, Path], names: list[str]) -> dict[str, dict]:
    """{export name: {"app", "runs", "elements", "export", "run"}}: each run trained,
    each ensemble made, each exported, through the command lines."""
    built = {}
    for name in names:
        app, runs, elements = EXPORTS[name]
        members = [_copy_run(work, data, run_name) if run_name.endswith("_copy")
                   else tiny.ensure_run(work, data, run_name) for run_name in runs]  # fmt: skip
        run_dir = members[0]
        if len(members) > 1:
            run_dir = work / "trained" / name
            if not (run_dir / "config.json").exists():
                _checked(run(f"apps.{app}", ["ensemble", "--run-dir", str(run_dir), "--members", *map(str, members)]))
        export_root = run_dir / "export"
        if not export_root.exists() or not any(p.name.isdigit() for p in export_root.iterdir()):
            _checked(run(f"apps.{app}", ["export", "--run-dir", str(run_dir)]))
        latest = max((p for p in export_root.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
        built[name] = {"app": app, "elements": elements, "export": str(latest), "run": str(run_dir),
                       "members": [str(member) for member in members]}  # fmt: skip
    return built


def _checked(finished):
    if finished.returncode != 0:
        raise RuntimeError(f"{' '.join(finished.argv[2:])} failed: {finished.stderr[-2000:]}")
    return finished


def run_serving(work: Path, data: dict[str, Path], names: list[str], big_batch: int, threads: int,
                seed: int, tally) -> None:  # fmt: skip
    built = build_exports(work, data, names)
    plan = work / "serving.plan.json"
    results = work / "serving.results.jsonl"
    plan.write_text(json.dumps({"exports": built, "big_batch": big_batch, "threads": threads, "seed": seed}),
                    encoding="utf-8")  # fmt: skip
    results.write_text("", encoding="utf-8")
    finished = run("benchmarks.reliability.serving", [str(plan), str(results)], timeout=7200)
    for line in results.read_text(encoding="utf-8").splitlines():
        tally.add(Trial(**json.loads(line)))
    if finished.returncode != 0:
        tally.add(Trial("serving", "checker", False, f"the checker process failed: {finished.stderr[-1500:]}"))


# --------------------------------------------------------------------------- checker


def _elements(kind: str, seed: int):
    """(hostile elements, the indices of the short ones) of an export's kind."""
    from benchmarks.reliability import exports

    if kind == "texts":
        hostile = exports.STRINGS
        return hostile, [i for i, text in enumerate(hostile) if len(text) < 1000]
    if kind == "sentences":
        hostile = exports.SENTENCES
        return hostile, [i for i, sentence in enumerate(hostile) if sum(map(len, sentence)) < 1000]
    import numpy as np

    rng = np.random.default_rng(seed)
    sequences = [np.stack([rng.uniform(size=6), np.eye(6)[i] + np.eye(6)[5 - i]], axis=1) for i in range(3)]
    hostile = [*sequences, np.zeros((6, 2)), np.full((6, 2), 1e30), np.full((6, 2), -1e30)]
    return hostile, list(range(len(hostile)))


def _calls(name: str, kind: str, served):
    from benchmarks.reliability import exports

    app = EXPORTS[name][0]
    if kind == "sentences":
        return exports.tagging_calls
    if kind == "sequences":
        signature = served.signatures["serving_default"]
        (argument,) = signature.structured_input_signature[1]
        return lambda elements: [dataclasses.replace(call, inputs={argument: call.inputs["inputs"]})
                                 for call in exports.sequence_calls(elements)]  # fmt: skip
    if app == "language_model":
        return exports.lm_calls
    argument = "texts" if app == "sentiment" else "sources"
    return exports.text_calls("serving_default", argument)


class Checker:
    """The properties of one loaded export (see the module docstring)."""

    def __init__(self, name: str, spec: dict, seed: int):
        from apps.common.export import load_export

        self.name, self.spec = name, spec
        self.served = load_export(spec["export"])
        self.hostile, self.short = _elements(spec["elements"], seed)
        self.calls = _calls(name, spec["elements"], self.served)
        self.rng = random.Random(seed)
        self.alone: dict[tuple[int, str], dict] = {}

    def alone_outputs(self, index: int, signature: str) -> dict:
        """What element `index` of the hostile list gives alone (cached)."""
        from benchmarks.reliability.exports import run_call

        key = (index, signature)
        if key not in self.alone:
            for call in self.calls([self.hostile[index]]):
                (self.alone[(index, call.signature)],) = call.split(run_call(self.served, call))
        return self.alone[key]

    def compare(self, indices: list[int], where: str) -> None:
        from benchmarks.reliability.exports import assert_same, run_call

        for call in self.calls([self.hostile[i] for i in indices]):
            together = call.split(run_call(self.served, call))
            assert len(together) == len(indices), f"{where} {call.signature}: {len(together)} rows"
            for position, index in enumerate(indices):
                assert_same(together[position], self.alone_outputs(index, call.signature),
                            f"{where} {call.signature} element {position}")  # fmt: skip

    def elements(self) -> str:
        self.compare(list(range(len(self.hostile))), "all elements")
        return f"{len(self.hostile)} elements in one batch, each as alone"

    def empty(self) -> str:
        from benchmarks.reliability.exports import run_call

        for call in self.calls([]):
            outputs = run_call(self.served, call)
            assert call.split(outputs) == [], f"{call.signature}: rows for an empty batch"
            assert all(value.shape[:1] == (0,) for value in outputs.values()), call.signature
        return "a batch of 0 gives outputs of 0 rows"

    def big(self, size: int) -> str:
        indices = [self.rng.choice(self.short) for _ in range(size)]
        self.compare(indices, f"batch of {size}")
        return f"a batch of {size} (short elements), each as alone"

    def threads(self, count: int) -> str:
        plans = [[[self.rng.choice(self.short) for _ in range(self.rng.randint(1, 16))] for _ in range(3)]
                 for _ in range(count)]  # fmt: skip
        for index in self.short:  # computed before the threads start
            for call in self.calls([self.hostile[index]]):
                self.alone_outputs(index, call.signature)
        errors: list[str] = []
        barrier = threading.Barrier(count)

        def work(batches):
            barrier.wait()
            for indices in batches:
                try:
                    self.compare(indices, "thread")
                except Exception as error:  # noqa: BLE001 - reported as the finding
                    errors.append(f"{type(error).__name__}: {str(error)[:300]}")

        pool = [threading.Thread(target=work, args=(batches,)) for batches in plans]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        assert not errors, f"{len(errors)} of {3 * count} calls: {errors[0]}"
        return f"{count} threads x 3 calls of 1-16 elements at once, each as alone"

    def fresh_process(self, folder: Path) -> str:
        from benchmarks.reliability.exports import (
            FRESH_PROCESS_SCRIPT,
            assert_same,
            codec,
            fresh_environment,
            fresh_process_plan,
            run_call,
        )

        calls = self.calls(self.hostile)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "plan.json").write_text(json.dumps(fresh_process_plan(self.spec["export"], calls)))
        result = subprocess.run([sys.executable, "-c", FRESH_PROCESS_SCRIPT], cwd=folder,
                                env=fresh_environment(), capture_output=True, text=True, timeout=900)  # fmt: skip
        assert result.returncode == 0, result.stderr[-1500:]
        fresh = json.loads((folder / "results.json").read_text())
        for call, outputs in zip(calls, fresh):
            got = {key: codec["decode"](item) for key, item in outputs.items()}
            assert_same(got, run_call(self.served, call), f"{call.signature} in a fresh process")
        return "plain tf.saved_model.load without the suite's source: the same outputs"


def pickles(folder: Path) -> list[str]:
    """Files under `folder` that are pickles (by magic bytes or name)."""
    found = []
    for path in Path(folder).rglob("*"):
        if not path.is_file():
            continue
        with open(path, "rb") as handle:
            head = handle.read(2)
        if head in PICKLE_MAGIC or path.suffix in (".pkl", ".pickle"):
            found.append(str(path))
    return found


def check_safe_mode(run_dir: Path, app: str) -> str:
    import importlib

    import keras

    import layers

    layers.register_all()
    importlib.import_module(f"apps.{app}.model")  # the app's own layers, registered
    files = sorted(Path(run_dir, "checkpoints").glob("*.keras"))
    assert files, f"no .keras file in {run_dir}/checkpoints"
    for path in files:
        keras.saving.load_model(path, safe_mode=True, compile=False)
    return f"{', '.join(path.name for path in files)} load with safe_mode=True"


def _record(results: Path, kind: str, subject: str, what: str, check) -> None:
    try:
        trial = Trial(kind, subject, True, check())
    except Exception as error:  # noqa: BLE001 - a failed property is the finding
        trial = Trial(kind, subject, False, f"{what}: {type(error).__name__}: {str(error)[:700]}")
    with open(results, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(dataclasses.asdict(trial)) + "\n")


def main(argv: list[str] | None = None) -> None:
    plan_path, results = map(Path, (sys.argv[1:] if argv is None else argv)[:2])
    plan = json.loads(plan_path.read_text(encoding="utf-8"))
    runs_seen: set[str] = set()
    for name, spec in plan["exports"].items():
        checker = Checker(name, spec, plan["seed"])
        properties = [
            ("elements", checker.elements),
            ("empty batch", checker.empty),
            (f"batch of {plan['big_batch']}", functools.partial(checker.big, plan["big_batch"])),
            ("threads", functools.partial(checker.threads, plan["threads"])),
            ("fresh process", functools.partial(checker.fresh_process, plan_path.parent / "fresh" / name)),
        ]
        for what, check in properties:
            _record(results, "serving", name, what, check)
        for run_dir in [spec["run"], *spec["members"]]:
            if run_dir in runs_seen:
                continue
            runs_seen.add(run_dir)
            subject = Path(run_dir).name
            _record(results, "no_pickle", subject, "pickle files", functools.partial(_no_pickle, run_dir))
            if any(Path(run_dir, "checkpoints").glob("*.keras")):
                _record(results, "safe_mode", subject, "safe_mode",
                        functools.partial(check_safe_mode, Path(run_dir), spec["app"]))  # fmt: skip


def _no_pickle(run_dir: str) -> str:
    found = pickles(Path(run_dir))
    assert not found, f"pickle files: {found[:5]}"
    count = sum(1 for path in Path(run_dir).rglob("*") if path.is_file())
    return f"none of its {count} files (exports included) is a pickle"


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
