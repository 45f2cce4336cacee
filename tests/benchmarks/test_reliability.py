"""The fault campaign (`python -m benchmarks.reliability`) in its tiny mode, one kind of
trial at a time, on one working folder (trained tiny runs are shared between kinds); and
the checks it relies on, on cases whose answer is known."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from benchmarks.reliability import __main__ as campaign
from benchmarks.reliability.common import Finished, Tally, Trial, error_problem, merged, run
from benchmarks.reliability.fuzz import Case, Mutation, judge
from benchmarks.reliability.serving import pickles

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("reliability")


@pytest.mark.slow
@pytest.mark.parametrize("kind", campaign.KINDS)
def test_every_tiny_trial_holds(kind, work):
    results = work / f"{kind}.json"
    status = campaign.main(["--mode", "tiny", "--kinds", kind, "--work", str(work), "--results", str(results)])
    figures = json.loads(results.read_text())
    counted = {key: value for key, value in figures.items() if key.endswith("_all_trials")}
    assert counted and all(value > 0 for value in counted.values()), figures
    failures = {key: value for key, value in figures.items() if key.endswith("_failures")}
    assert status == 0 and not failures, failures
    assert figures[f"run_{kind}_command"].startswith("python -m benchmarks.reliability --mode tiny")


def test_no_code_of_the_suite_uses_pickle():
    """Exports, checkpoints and caches are SavedModels, `.keras` files, JSON and text: no
    module imports pickle (or a library built on it), none loads arrays with pickles."""
    pattern = re.compile(r"^\s*(import|from)\s+(pickle|cPickle|dill|cloudpickle|joblib|shelve)\b"
                         r"|allow_pickle\s*=\s*True|\bpickle\.(load|loads|dump|dumps)\(", re.M)  # fmt: skip
    found = [str(path.relative_to(REPO)) for package in ("apps", "pipelines", "layers", "tuning", "benchmarks")
             for path in (REPO / package).rglob("*.py") if pattern.search(path.read_text(encoding="utf-8"))]  # fmt: skip
    assert found == []


def test_pickle_files_are_found_by_their_magic_bytes(tmp_path):
    import pickle  # noqa: S403 - writing the file the check must find

    (tmp_path / "plain.json").write_text("{}")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "state.bin").write_bytes(pickle.dumps({"a": 1}))
    assert pickles(tmp_path) == [str(tmp_path / "sub" / "state.bin")]


@pytest.mark.parametrize(
    ("returncode", "stderr", "problem"),
    [
        (2, "INFO x: starting\nerror: data.txt:3: bad\n", None),
        (1, "Traceback (most recent call last):\n  ...\nValueError: x\n", "traceback"),
        (2, "error: other.txt:3: bad\n", "does not name"),
        (2, "error: data.txt:3: bad\nmore\n", "not one final error line"),
        (0, "", "exit status 0"),
    ],
)
def test_a_bad_input_must_end_in_one_error_line_naming_the_file(returncode, stderr, problem):
    found = error_problem(Finished([], returncode, "", stderr, 0.0), ["data.txt"])
    assert found is None if problem is None else problem in found, found


def test_a_refused_file_must_leave_the_run_directory_unchanged():
    case = Case("conll", {"kind": "cli"}, Mutation("empty file", b"", True), ["f.txt"])
    refused = {"returncode": 2, "stderr": "error: f.txt: no sentences\n", "escaped": ""}
    assert judge(case, {**refused, "fingerprint_before": {"a": "1"}, "fingerprint_after": {"a": "1"}}) is None
    changed = judge(case, {**refused, "fingerprint_before": {}, "fingerprint_after": {"config.json": "2"}})
    assert "run directory changed" in changed
    accepted = {"returncode": 0, "stderr": "", "escaped": "", "fingerprint_before": {}, "fingerprint_after": {}}
    assert judge(case, accepted) == "accepted a file that can never be valid"


def test_the_tally_writes_flat_keys_per_subject_and_kind():
    tally = Tally()
    tally.add(Trial("kill", "adding", True, "fine"))
    tally.add(Trial("kill", "adding", False, "lost epoch 2"))
    tally.add(Trial("kill", "tuner", True, "fine"))
    assert tally.figures() == {
        "kill_adding_trials": 2, "kill_adding_held": 1, "kill_adding_failures": ["lost epoch 2"],
        "kill_all_trials": 3, "kill_all_held": 2, "kill_tuner_trials": 1, "kill_tuner_held": 1,
    }  # fmt: skip


def test_a_part_of_the_campaign_replaces_only_the_subjects_it_tried():
    earlier = {"kill_adding_trials": 2, "kill_adding_held": 1, "kill_adding_failures": ["lost epoch 2"],
               "kill_tuner_trials": 3, "kill_tuner_held": 3, "kill_all_trials": 5, "kill_all_held": 4,
               "fuzz_jsb_trials": 4, "fuzz_jsb_held": 4, "fuzz_all_trials": 4, "fuzz_all_held": 4,
               "run_kill_command": "python -m benchmarks.reliability --kinds kill"}  # fmt: skip
    tally = Tally()
    tally.add(Trial("kill", "adding", True, "fine"))
    assert merged(earlier, tally.figures()) == {
        "kill_adding_trials": 1, "kill_adding_held": 1, "kill_tuner_trials": 3, "kill_tuner_held": 3,
        "kill_all_trials": 4, "kill_all_held": 4, "fuzz_jsb_trials": 4, "fuzz_jsb_held": 4,
        "fuzz_all_trials": 4, "fuzz_all_held": 4, "run_kill_command": earlier["run_kill_command"],
    }  # fmt: skip


@pytest.mark.slow
def test_inject_kills_at_the_chosen_write_leaving_it_torn(tmp_path):
    script = tmp_path / "writes.py"
    script.write_text(
        "import os, sys\n"
        "folder = sys.argv[1]\n"
        "open(os.path.join(folder, 'a.txt'), 'w').write('first file')\n"
        "open(os.path.join(folder, 'b.txt'), 'w').write('second file')\n"
        "os.replace(os.path.join(folder, 'b.txt'), os.path.join(folder, 'c.txt'))\n"
    )
    folder = tmp_path / "out"
    folder.mkdir()
    log = tmp_path / "writes.log"
    assert run(str(script), [str(folder)], inject=([folder], 0, log)).returncode == 0
    assert [line.split("\t")[2] for line in log.read_text().splitlines()] == ["open", "open", "replace"]
    for name in ("a.txt", "b.txt", "c.txt"):
        (folder / name).unlink(missing_ok=True)
    killed = run(str(script), [str(folder)], inject=([folder], 2, None))
    assert killed.killed
    assert (folder / "a.txt").read_text() == "first file"
    assert (folder / "b.txt").read_text() == "secon"  # half of "second file": the write torn
    killed = run(str(script), [str(folder)], inject=([folder], 3, None))
    assert killed.killed and not (folder / "c.txt").exists()


def test_option_cases_of_the_ensemble_command_name_its_members_and_a_new_run(tmp_path):
    """`ensemble` requires `--members`: without them every case was refused by argparse
    before its option was looked at (18 false failures in the first full campaign)."""
    import random

    from apps.common.cli import prepare
    from apps.tagging.__main__ import COMMANDS
    from apps.tagging.config import TaggingConfig
    from benchmarks.reliability.fuzz import option_cases

    trained, new_run = tmp_path / "trained", tmp_path / "new_run"
    cases = [case for case in option_cases("tagging", trained, new_run, random.Random(0), 200)
             if case[0][0] == "ensemble"]  # fmt: skip
    assert cases
    for argv, _bad, target in cases:
        assert argv[argv.index("--members") + 1] == str(trained) and target != trained
    argv = next(argv for argv, bad, _ in cases if bad is None)
    prepare("tagging", TaggingConfig, COMMANDS, argv)  # argparse exited (code 2) without the members
