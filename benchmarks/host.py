"""The `machine` line of the flat results files in `benchmarks/results/`: the CPU's model
and the vector/matrix units that decide which precisions are fast on it."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

#: CPU flags that decide which kernels are fast (bf16 pays only with AMX or AVX512-BF16).
KERNEL_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")


def cpu(cpuinfo: str | None = None) -> dict:
    """{"model": ..., "flags": [the KERNEL_FLAGS it has]} read from /proc/cpuinfo (Linux);
    the model from `platform.processor()` elsewhere, with no flags."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    model, flags = platform.processor() or platform.machine(), set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            model = value.strip()
        elif key.strip() == "flags":
            flags = set(value.split())
    return {"model": model, "flags": [flag for flag in KERNEL_FLAGS if flag in flags]}


def machine() -> str:
    """E.g. "x86_64, AMD EPYC (avx2 fma), 2 CPU cores, no GPU, TensorFlow 2.21.0"."""
    import tensorflow as tf  # here, so that commands that only read results stay fast

    gpus = len(tf.config.list_physical_devices("GPU"))
    processor = cpu()
    return (
        f"{platform.machine()}, {processor['model']} ({' '.join(processor['flags']) or 'no AVX2'}), "
        f"{os.cpu_count()} CPU cores, {f'{gpus} GPU' if gpus else 'no GPU'}, "
        f"TensorFlow {tf.__version__}"
    )


def machine_of_nested_host(host: dict) -> str:
    """The same line for the `host` record of an old nested results file (those files were
    all written on the CPU-only development machine)."""
    return f"{host['machine']}, {host['cpu_count']} CPU cores, no GPU, TensorFlow {host['tensorflow']}"


def run_precision(run_dir: str | Path) -> str:
    """The Keras dtype policy an app's run trained in here: its saved `--mixed-precision`,
    with `auto` resolved for this machine (float32 without AMX / AVX512-BF16)."""
    from apps.common.precision import resolve_precision

    config = json.loads((Path(run_dir) / "config.json").read_text(encoding="utf-8"))
    return resolve_precision(config["mixed_precision"])
