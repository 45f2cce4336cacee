"""Multi-worker trials: apps/adding trained under MultiWorkerMirroredStrategy by two worker
processes on 127.0.0.1 (TF_CONFIG, free ports), killed (SIGKILL, both) once the chief has
committed a number of epochs drawn from the seed, restarted, and compared; and one trial
whose workers' backups are an epoch apart (`staggered_trial`).

Each worker has its own run directory (Keras's callbacks have no chief: every worker
writes its history, checkpoints and backup). A trial holds when both restarted workers
end with exit 0 at the last epoch, each resumed from its last committed epoch with every
epoch in its history once, the two workers end with equal weights, the chief's final
weights are bit-equal to those of an uninterrupted two-worker run, and its final
validation MSE is within `TOLERANCE` (relative) of a one-worker run of the same global
batch. Not bit-equal to the one-worker run: the same batches, but each step's gradient is
summed from the two workers' halves of the batch, which rounds otherwise. (The stream is
the same in every iterator, `pipelines.batching.reshuffled_passes`: Keras's `fit` under a
tf.distribute strategy builds the model from an iterator it drops, whose read-ahead used
to shift the training order by timing.)
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.reliability.common import (
    REPO,
    Trial,
    environment,
    history_epochs,
    read_json,
    run,
    weights_differ,
)
from benchmarks.reliability.tiny import APPS

TOLERANCE = 0.02  # relative difference of the final validation MSE


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for handle in sockets:
        handle.bind(("127.0.0.1", 0))
    ports = [handle.getsockname()[1] for handle in sockets]
    for handle in sockets:
        handle.close()
    return ports


def _start_workers(run_dirs: list[Path], data: dict[str, Path], ports: list[int], logs: Path) -> list:
    spec = APPS["adding"]
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    processes = []
    for index, run_dir in enumerate(run_dirs):
        config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        argv = [*spec.train_argv(run_dir, data), "--strategy", "multi_worker"]
        log = open(logs / f"{run_dir.name}.log", "a", encoding="utf-8")  # noqa: SIM115 - closed with the process
        processes.append((subprocess.Popen([sys.executable, "-m", "apps.adding", *argv], stdout=log,
                                           stderr=subprocess.STDOUT, env=environment(TF_CONFIG=config),
                                           cwd=REPO), log))  # fmt: skip
    return processes


def _wait(processes, timeout: float = 1200) -> list[int]:
    codes = []
    deadline = time.monotonic() + timeout
    for process, log in processes:
        try:
            codes.append(process.wait(timeout=max(1.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            process.kill()
            codes.append(process.wait())
        log.close()
    return codes


def _epoch(run_dir: Path) -> int:
    return int(read_json(run_dir / "backup" / "training_metadata.json").get("epoch", 0))


def _valid_mse(run_dir: Path) -> float | None:
    return read_json(run_dir / "metrics.json").get("valid_mse")


def _restarted_problems(run_dirs: list[Path], data: dict[str, Path], reference: Path, work: Path) -> list[str]:
    """Restarts the two workers of `run_dirs` and lists what went wrong: an exit other than
    0, an epoch missing from or repeated in a history, final weights that differ between
    the workers or from the uninterrupted run `reference`."""
    codes = _wait(_start_workers(run_dirs, data, _free_ports(2), work))
    problems = [] if codes == [0, 0] else [f"restarted workers exited {codes} (logs in {work})"]
    for run_dir in run_dirs:
        if history_epochs(run_dir) != list(range(APPS["adding"].epochs)):
            problems.append(f"{run_dir.name} history epochs {history_epochs(run_dir)}")
    if not problems:
        final = [run_dir / "checkpoints" / "final.keras" for run_dir in run_dirs]
        for problem in (weights_differ(final[0], final[1]),
                        weights_differ(reference / "checkpoints" / "final.keras", final[0])):  # fmt: skip
            if problem:
                problems.append(problem)
    return problems


def multi_worker_trial(work: Path, data: dict[str, Path], rng: random.Random, index: int,
                       reference: Path, single: Path) -> Trial:  # fmt: skip
    spec = APPS["adding"]
    run_dirs = [work / f"multi_worker{index}_w{worker}" for worker in range(2)]
    commit = rng.randint(1, spec.epochs - 1)
    ports = _free_ports(2)
    processes = _start_workers(run_dirs, data, ports, work)
    deadline = time.monotonic() + 1200
    while _epoch(run_dirs[0]) < commit and time.monotonic() < deadline:
        if any(process.poll() is not None for process, _ in processes):
            break
        time.sleep(0.05)
    delay = rng.uniform(0, 1.0)
    time.sleep(delay)
    for process, _ in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
    killed = _wait(processes)
    committed = [_epoch(run_dir) for run_dir in run_dirs]
    how = (f"both workers killed {delay:.2f} s after the chief committed epoch {commit} "
           f"(exits {killed}); committed epochs {committed}")  # fmt: skip
    problems = _restarted_problems(run_dirs, data, reference, work)
    if not problems:
        ours, theirs = _valid_mse(run_dirs[0]), _valid_mse(single)
        gap = abs(ours - theirs) / theirs
        if gap > TOLERANCE:
            problems.append(f"valid MSE {ours:.5f}, one worker {theirs:.5f} ({100 * gap:.2f} % apart)")
        else:
            how += f"; valid MSE {ours:.5f} vs one worker's {theirs:.5f} ({100 * gap:.2f} % apart)"
    detail = how + "; " + ("; ".join(problems) if problems else
                           "both resumed and ended at the last epoch with the uninterrupted two-worker "
                           "run's weights (bit-equal)")  # fmt: skip
    return Trial("multi_worker", "adding", not problems, detail)


def staggered_trial(work: Path, data: dict[str, Path], reference: list[Path]) -> Trial:
    """The uninterrupted two-worker run with worker 0's backup one epoch behind worker 1's
    (as when both are killed after worker 1 committed the last epoch and before worker 0
    did), restarted: both must resume from the epoch both committed and end as the
    uninterrupted run did."""
    run_dirs = [work / f"staggered_w{worker}" for worker in range(2)]
    for source, target in zip(reference, run_dirs):
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target)
    record_path = run_dirs[0] / "backup" / "training_metadata.json"
    record = read_json(record_path)
    record_path.write_text(json.dumps(record["previous"]), encoding="utf-8")
    how = f"worker 0's backup rolled back to epoch {record['previous']['epoch']}, worker 1's at {record['epoch']}"
    problems = _restarted_problems(run_dirs, data, reference[0], work)
    detail = how + "; " + ("; ".join(problems) if problems else
                           "both resumed from the epoch both committed and ended with the uninterrupted "
                           "run's weights (bit-equal)")  # fmt: skip
    return Trial("multi_worker", "adding", not problems, detail)


def run_multi_worker(work: Path, data: dict[str, Path], trials: int, rng: random.Random, tally) -> None:
    work = work / "multi_worker"
    work.mkdir(parents=True, exist_ok=True)
    spec = APPS["adding"]
    single = work.parent / "adding_reference"  # the kill trials' uninterrupted run: the same command
    if not (single / "metrics.json").exists():
        single = work / "one_worker"
        finished = run("apps.adding", spec.train_argv(single, data))
        if finished.returncode != 0:
            raise RuntimeError(f"the one-worker run failed: {finished.stderr[-2000:]}")
    reference = [work / f"uninterrupted_w{worker}" for worker in range(2)]
    codes = _wait(_start_workers(reference, data, _free_ports(2), work))
    if codes != [0, 0]:
        tally.add(Trial("multi_worker", "adding", False,
                        f"the uninterrupted two-worker run failed (exits {codes}; logs in {work})"))  # fmt: skip
        return
    tally.add(staggered_trial(work, data, reference))
    for index in range(trials):
        if not tally.open:
            return
        tally.add(multi_worker_trial(work, data, rng, index, reference[0], single))
