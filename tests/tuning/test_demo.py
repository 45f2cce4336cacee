"""`python -m tuning demo` (run by `make demo`): the small ablation on the adding problem."""

from __future__ import annotations

import json

import pytest

from tuning.__main__ import main


@pytest.mark.slow
def test_demo_prints_the_variant_table_and_writes_the_box_plot(tmp_path, capsys):
    run_dir = tmp_path / "demo"
    argv = ["demo", "--run-dir", str(run_dir), "--trials", "2", "--cells", "vanilla,nfg",
            "--length", "8", "--epochs", "1"]
    report = main(argv)
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("| variant | trials | failed | best test_mse |") for line in lines)
    assert any(line.startswith("| vanilla | 2 | 0 |") and line.endswith("| baseline |")
               for line in lines)
    assert any(line.startswith("| nfg | 2 | 0 |") for line in lines)
    assert (run_dir / "report" / "ablation.png").stat().st_size > 1000
    trials = sorted((run_dir / "project").glob("trial_*/trial.json"))
    assert [json.loads(path.read_text())["status"] for path in trials] == ["COMPLETED"] * 4
    assert [row["variant"] for row in report["variants"]] == ["vanilla", "nfg"]
    for path in trials:  # the demo's space: width in [32, 64], the app's sequences of length 8
        values = json.loads(path.read_text())["hyperparameters"]["values"]
        assert 32 <= values["units"] <= 64
    assert json.loads((run_dir / "search.json").read_text())["task_config"] == {"length": 8}
    # rerunning resumes the finished demo: nothing is trained again
    assert main(argv)["trials"] == {"COMPLETED": 4}
