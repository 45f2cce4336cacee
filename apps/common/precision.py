"""Which training precision fits the machine: `--mixed-precision auto`.

bfloat16 matrix products pay only on CPUs with AMX or AVX512-BF16 units (on an AVX2-only
CPU a 1024x1024 bf16 matmul ran at 58 GFLOP/s against 67 in float32); GPUs run
mixed_bfloat16 from compute capability 8.0 (Ampere) and mixed_float16 from 7.0.

The environment variable `RNN_SUITE_AUTO_PRECISION` (a policy name) decides what `auto`
stands for instead of the machine, e.g. `float32` to keep every run of a script or test
suite in float32 whatever the CPU.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

#: The environment variable that, set to a policy name, decides what `auto` stands for.
AUTO_PRECISION_VARIABLE = "RNN_SUITE_AUTO_PRECISION"
#: The policies `auto` can stand for.
POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")

#: CPU flags that make bfloat16 fast.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return set()


def auto_policy(gpu_capabilities: list[tuple[int, int]], flags: set[str]) -> str:
    """The policy `auto` stands for, given the GPUs' compute capabilities and CPU flags."""
    if gpu_capabilities:
        lowest = min(gpu_capabilities)
        if lowest >= (8, 0):
            return "mixed_bfloat16"
        return "mixed_float16" if lowest >= (7, 0) else "float32"
    return "mixed_bfloat16" if flags & set(BF16_CPU_FLAGS) else "float32"


def resolve_precision(name: str) -> str:
    """The Keras dtype policy of `--mixed-precision NAME` on this machine (`auto` decided
    here and logged)."""
    if name != "auto":
        return name
    chosen = os.environ.get(AUTO_PRECISION_VARIABLE, "")
    if chosen:
        if chosen not in POLICIES:
            raise ValueError(
                f"{AUTO_PRECISION_VARIABLE}={chosen!r}: expected one of {', '.join(POLICIES)}"
            )
        logger.info("--mixed-precision auto: %s (set by %s)", chosen, AUTO_PRECISION_VARIABLE)
        return chosen
    import tensorflow as tf

    capabilities = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        capabilities.append(tuple(details.get("compute_capability", (0, 0))))
    policy = auto_policy(capabilities, cpu_flags())
    logger.info(
        "--mixed-precision auto: %s (%s)",
        policy,
        f"GPU compute capability {min(capabilities)}" if capabilities
        else f"CPU {'with' if policy != 'float32' else 'without'} AMX/AVX512-BF16",
    )
    return policy


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[str]:
    """Builds inside it take the policy `name` (`auto` resolved for this machine); the
    process-wide policy is restored afterwards."""
    import keras

    previous = keras.config.dtype_policy()
    policy = resolve_precision(name)
    keras.config.set_dtype_policy(policy)
    try:
        yield policy
    finally:
        keras.config.set_dtype_policy(previous)
