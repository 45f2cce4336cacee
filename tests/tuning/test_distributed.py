"""keras-tuner's chief/worker mode on loopback: one chief serving the oracle, two workers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tuning.tiny_search import search_arguments
from tuning.report import load_trials

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_chief_and_two_workers_complete_the_search(tmp_path):
    run_dir = tmp_path / "distributed"
    command = [sys.executable, "-m", "tuning", *search_arguments(run_dir)]
    base = dict(
        os.environ,
        PYTHONPATH=str(REPO),
        TF_CPP_MIN_LOG_LEVEL="3",
        KERASTUNER_ORACLE_IP="127.0.0.1",
        KERASTUNER_ORACLE_PORT=str(_free_port()),
    )
    processes = {
        role: subprocess.Popen(
            command,
            env={**base, "KERASTUNER_TUNER_ID": role},
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for role in ("chief", "tuner0", "tuner1")
    }
    outputs = {}
    try:
        for role, process in processes.items():
            outputs[role] = process.communicate(timeout=400)[0]
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
    for role, process in processes.items():
        assert process.returncode == 0, f"{role}:\n{outputs[role][-3000:]}"
    records = load_trials(run_dir)
    assert [r.status for r in records] == ["COMPLETED"] * 2, [r.message for r in records]
    assert sorted(r.cell for r in records) == ["gru", "vanilla"]
    ran_by = {
        json.loads((run_dir / "project" / f"trial_{r.trial_id}" / "worker.json").read_text())[
            "tuner_id"
        ]
        for r in records
    }
    assert ran_by <= {"tuner0", "tuner1"}  # the chief serves the oracle and trains nothing
    assert "(chief)" in outputs["chief"] and "'COMPLETED': 2" in outputs["chief"]
    for worker in ("tuner0", "tuner1"):
        assert "reported to the chief" in outputs[worker]
