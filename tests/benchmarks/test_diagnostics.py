"""The diagnostics runner's flat keys: one per row and column of a study's table."""

from __future__ import annotations

from benchmarks.diagnostics import flat_record


def test_a_study_table_becomes_flat_keys_named_by_row_and_column():
    record = {
        "title": "Memory length",
        "table": [
            {"task": "sign_memory", "cell": "lstm", "T": 10, "success_rate": 1.0},
            {"task": "copy", "cell": "irnn", "T": 200, "success_rate": 0.3333333},
        ],
    }
    assert flat_record("memory-length", record) == {
        "memory_length_sign_memory_lstm_t10_task": "sign_memory",
        "memory_length_sign_memory_lstm_t10_cell": "lstm",
        "memory_length_sign_memory_lstm_t10_t": 10,
        "memory_length_sign_memory_lstm_t10_success_rate": 1.0,
        "memory_length_copy_irnn_t200_task": "copy",
        "memory_length_copy_irnn_t200_cell": "irnn",
        "memory_length_copy_irnn_t200_t": 200,
        "memory_length_copy_irnn_t200_success_rate": 0.3333333,
    }
    forget_bias = flat_record("forget-bias", {"table": [
        {"metric": "valid_mse", "forget_bias": 1.0, "final_mean": 0.01}]})
    assert forget_bias == {"forget_bias_valid_mse_fb1_metric": "valid_mse",
                           "forget_bias_valid_mse_fb1_forget_bias": 1.0,
                           "forget_bias_valid_mse_fb1_final_mean": 0.01}
