"""`python -m benchmarks.reliability`: the fault campaign.

    python -m benchmarks.reliability --mode full     # writes benchmarks/results/reliability.json
    python -m benchmarks.reliability --mode tiny     # a few trials of each kind (the test suite's)

Every trial runs the suite's real command lines in subprocesses (`python -m apps.<app>`,
`python -m tuning`) on tiny generated data; the trials are drawn from `--seed`. Kinds:
kill (training runs and tuner searches killed with SIGKILL and rerun; `kills.py`),
vocabulary (tokenizer files killed while written; `kills.py`), fuzz (malformed files for
every reader; `fuzz.py`), options (option values in and out of range; `fuzz.py`),
serving (every export under hostile batches and threads, no pickle, safe_mode;
`serving.py`), multi_worker (two workers killed and resumed; `multi_worker.py`).
The results file holds `<kind>_<subject>_trials` and `_held` (and `_failures`, the
details of failed trials), with the command, date, wall time, machine and conditions;
every trial's line is in WORK/trials.log. Exit status 1 when a trial failed.
"""

from __future__ import annotations

import argparse
import datetime
import random
import shlex
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import results_file
from benchmarks.reliability import fuzz, kills, multi_worker, serving, tiny
from benchmarks.reliability.common import REPO, Tally

RESULTS = REPO / "benchmarks" / "results" / "reliability.json"
KINDS = ("kill", "vocabulary", "tuner", "fuzz", "options", "serving", "multi_worker")

#: Trials of each kind per mode (per app, reader, tokenizer build, ...).
COUNTS = {
    "full": {"kill": 20, "vocabulary": 5, "tuner": 20, "tuner_trials": 3, "fuzz": 50, "separate": 3,
             "options": 50, "big_batch": 1024, "threads": 8, "multi_worker": 2},
    "tiny": {"kill": 1, "vocabulary": 1, "tuner": 1, "tuner_trials": 2, "fuzz": 3, "separate": 1,
             "options": 4, "big_batch": 1024, "threads": 8, "multi_worker": 1},
}
#: What tiny mode covers (full mode: everything).
TINY = {"apps": ["adding"], "vocabularies": ["language_model_word"], "readers": ["jsb", "plain_text"],
        "exports": ["adding"]}  # fmt: skip


def run_campaign(args: argparse.Namespace, work: Path, tally: Tally) -> None:
    counts = COUNTS[args.mode]
    rng = random.Random(args.seed)
    data = tiny.write_data(work / "data")
    apps = args.apps or (TINY["apps"] if args.mode == "tiny" else list(tiny.APPS))
    kinds = args.kinds or list(KINDS)
    if "kill" in kinds:
        kills.run_kills(work, data, apps, counts["kill"], rng, tally)
    if "vocabulary" in kinds:
        builds = TINY["vocabularies"] if args.mode == "tiny" else [name for name, _, _ in kills.VOCABULARIES]
        builds = [name for name, app, _ in kills.VOCABULARIES if name in builds and app in (args.apps or tiny.APPS)]
        kills.run_vocabularies(work, data, builds, counts["vocabulary"], rng, tally)
    if "tuner" in kinds:
        kills.run_tuner(work, counts["tuner"], counts["tuner_trials"], rng, tally)
    if "fuzz" in kinds:
        readers = TINY["readers"] if args.mode == "tiny" else [*fuzz.readers(data), "aclimdb"]
        readers = [name for name in readers if args.apps is None or _reader_app(name, data) in (*args.apps, "")]
        fuzz.run_file_fuzz(work, data, readers, counts["fuzz"], counts["separate"], rng, tally)
    if "options" in kinds:
        fuzz.run_option_fuzz(work, data, apps, counts["options"], rng, tally)
    if "serving" in kinds:
        names = TINY["exports"] if args.mode == "tiny" else list(serving.EXPORTS)
        names = [name for name in names if args.apps is None or serving.EXPORTS[name][0] in args.apps]
        serving.run_serving(work, data, names, counts["big_batch"], counts["threads"], args.seed, tally)
    if "multi_worker" in kinds and (args.apps is None or "adding" in args.apps):
        multi_worker.run_multi_worker(work, data, counts["multi_worker"], rng, tally)


def _reader_app(name: str, data) -> str:
    return "sentiment" if name == "aclimdb" else fuzz.readers(data)[name].app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reliability", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("tiny", "full"), default="full")
    parser.add_argument("--apps", type=lambda text: text.split(","), default=None,
                        help=f"comma-separated apps (default: all of {', '.join(tiny.APPS)}; tiny: adding)")
    parser.add_argument("--kinds", type=lambda text: text.split(","), default=None,
                        help=f"comma-separated kinds of trial (default: all of {', '.join(KINDS)})")
    parser.add_argument("--seed", type=int, default=0, help="draws every kill point, mutation and value")
    parser.add_argument("--work", default="", help="working folder (default: a temporary one, removed)")
    parser.add_argument("--results", default="",
                        help=f"write the figures here (default: {RESULTS.relative_to(REPO)} in full mode, "
                        "none in tiny mode)")  # fmt: skip
    parser.add_argument("--conditions", default="", help="recorded with the figures")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.kinds or ()) - set(KINDS)) + sorted(set(args.apps or ()) - set(tiny.APPS))
    if unknown:
        parser.error(f"unknown kinds or apps: {unknown}")
    with tempfile.TemporaryDirectory(prefix="reliability-") as temporary:
        work = Path(args.work or temporary).resolve()
        work.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        with open(work / "trials.log", "a", encoding="utf-8") as log:
            tally = Tally(log=log)
            run_campaign(args, work, tally)
        wall = time.monotonic() - start
    for trial in tally.failed:
        print(trial.line(), file=sys.stderr)
    held = sum(trial.held for trial in tally.trials)
    print(f"{held} of {len(tally.trials)} trials held ({wall / 60:.1f} min)")
    results = Path(args.results) if args.results else (RESULTS if args.mode == "full" else None)
    if results is not None:
        from benchmarks.host import machine

        figures = {
            **tally.figures(),
            "command": shlex.join(["python", "-m", "benchmarks.reliability", *(sys.argv[1:] if argv is None else argv)]),
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "wall_time_s": round(wall, 1),
            "machine": machine(),
            "conditions": args.conditions,
            "mode": args.mode,
            "seed": args.seed,
        }
        with results_file.locked(results):
            results_file.write(results, figures)
    return 0 if not tally.failed else 1


if __name__ == "__main__":
    sys.exit(main())
