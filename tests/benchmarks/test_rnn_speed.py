"""benchmarks/rnn_speed: which kernels the machine has, and where bf16 figures apply."""

from __future__ import annotations

from benchmarks.rnn_speed import bf16_skip_note, cpu_kernels

SAPPHIRE_RAPIDS = """processor	: 0
model name	: Intel(R) Xeon(R) Platinum 8480+
flags		: fpu sse4_2 avx f16c fma avx2 avx512f avx512_vnni avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8
processor	: 1
model name	: Intel(R) Xeon(R) Platinum 8480+
flags		: fpu sse4_2 avx f16c fma avx2 avx512f avx512_vnni avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8
"""
EPYC_AVX2 = """processor	: 0
model name	: AMD EPYC
flags		: fpu sse4_1 sse4_2 fma avx f16c sse4a avx2
"""
GRAVITON3 = """processor	: 0
BogoMIPS	: 2100.00
Features	: fp asimd evtstrm aes sha1 sha2 crc32 atomics fphp asimdhp sve bf16 i8mm
"""


def test_cpu_kernels_lists_the_model_and_its_kernel_flags():
    kernels = cpu_kernels(SAPPHIRE_RAPIDS)
    assert kernels["cpu_model"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert {"amx_bf16", "avx512_bf16", "avx512f", "avx2", "fma"} <= set(kernels["cpu_flags"])
    assert kernels["bf16_kernels"] == ["amx_bf16", "avx512_bf16"]
    assert bf16_skip_note(kernels) is None


def test_bf16_figures_are_skipped_with_a_note_without_bf16_kernels():
    kernels = cpu_kernels(EPYC_AVX2)
    assert kernels["cpu_model"] == "AMD EPYC"
    assert kernels["cpu_flags"] == ["avx2", "fma", "f16c", "avx", "sse4_2"]
    assert kernels["bf16_kernels"] == []
    note = bf16_skip_note(kernels)
    assert note.startswith("bf16 speed figures skipped: AMD EPYC has no bf16 matrix kernels")


def test_arm_bf16_counts_and_an_unknown_cpu_has_no_flags():
    assert cpu_kernels(GRAVITON3)["bf16_kernels"] == ["bf16"]
    unknown = cpu_kernels("")
    assert unknown["cpu_flags"] == [] and bf16_skip_note(unknown) is not None
