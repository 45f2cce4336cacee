"""The diagnostics runner's flat keys and the Markdown tables rebuilt from them."""

from __future__ import annotations

from benchmarks.diagnostics import flat_record, table


def test_a_study_table_round_trips_through_flat_keys():
    record = {
        "title": "Memory length",
        "table": [
            {"task": "sign_memory", "cell": "lstm", "T": 10, "success_rate": 1.0,
             "mean_steps_to_success": None},
            {"task": "copy", "cell": "irnn", "T": 200, "success_rate": 0.3333333,
             "mean_steps_to_success": 150.0},
        ],
    }
    flat = flat_record("memory-length", record)
    assert flat["memory_length_rows"] == ["sign_memory_lstm_t10", "copy_irnn_t200"]
    assert flat["memory_length_copy_irnn_t200_success_rate"] == 0.3333333
    flat.update({"memory_length_command": "python -m apps.diagnostics memory-length",
                 "memory_length_date": "2026-01-01T00:00:00", "memory_length_wall_time_s": 90.0,
                 "memory_length_cpu_time_s": 60.0, "memory_length_conditions": "idle"})
    markdown = table(flat)
    assert "| task | cell | T | success_rate | mean_steps_to_success |" in markdown
    assert "| sign_memory | lstm | 10 | 1 | - |" in markdown
    assert "| copy | irnn | 200 | 0.3333 | 150 |" in markdown
    assert "wall 1.5 min (CPU 1.0 min); idle" in markdown
