"""benchmarks/rnn_speed: bf16 speed figures only on a CPU with bf16 matrix kernels."""

from __future__ import annotations

from benchmarks import host
from benchmarks.rnn_speed import bf16_skip_note

SAPPHIRE_RAPIDS = """processor	: 0
model name	: Intel(R) Xeon(R) Platinum 8480+
flags		: fpu sse4_2 avx fma avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile
"""
COOPER_LAKE = "model name\t: Intel(R) Xeon(R) 8380H\nflags\t\t: avx2 fma avx512f avx512_bf16\n"
EPYC_AVX2 = "model name\t: AMD EPYC\nflags\t\t: fpu sse4_1 sse4_2 fma avx f16c sse4a avx2\n"


def test_bf16_figures_are_measured_with_amx_or_avx512_bf16():
    assert bf16_skip_note(host.cpu(SAPPHIRE_RAPIDS)) is None
    assert bf16_skip_note(host.cpu(COOPER_LAKE)) is None


def test_bf16_figures_are_skipped_with_a_note_without_bf16_kernels():
    note = bf16_skip_note(host.cpu(EPYC_AVX2))
    assert note.startswith("bf16 speed figures skipped: AMD EPYC has no bf16 matrix kernels")
    assert bf16_skip_note(host.cpu("")) is not None  # no /proc/cpuinfo: flags unknown


def test_bf16_accuracy_trains_the_adding_app_in_both_precisions():
    """The section that runs only on machines with bf16 kernels, on a tiny setting."""
    import math

    from benchmarks.rnn_speed import section_bf16_accuracy

    results = section_bf16_accuracy(epochs=1, length=6, units=4, train_examples=64, batch_size=16,
                                    steps_per_epoch=2, test_examples=32)  # fmt: skip
    assert sorted(results) == ["gru float32", "gru mixed_bfloat16", "lstm float32", "lstm mixed_bfloat16"]
    assert all(math.isfinite(row["test_mse"]) and row["steps"] == 2 for row in results.values())
