"""Speed of `layers.Recurrent` against Keras' own recurrent layers, on this machine's CPU.

Every method runs inside one process, round-robin after a warm-up, for `--rounds` rounds;
each figure is the median (and min-max) over rounds of the per-round ratio to
`keras.layers.LSTM` (graph mode, no XLA) measured in the same round, so that the machine's
load drifts out of the ratios. Wall-clock ratios are the primary figures (tokens/s);
CPU-time ratios (the process's CPU seconds per step, all threads) are also recorded, as
they hold up better on a machine shared with other jobs.

    python -m benchmarks.rnn_speed            # everything; writes benchmarks/results/rnn_speed.json
    python -m benchmarks.rnn_speed --quick    # the standard LSTM only, under 2 minutes

Workloads (the issue's W1): training = batch 64, length 100, input 128, hidden 256, one
layer, Adam, `sum(outputs)` loss, all outputs returned; inference = the same forward
pass at batch 64; latency = one 100-step sequence (batch 1). Training FLOPs
= 3 x forward, forward = 2 * B * T * (D * width(W) + units * width(R) [+ FGR's gates^2]).
"Fraction of matmul peak" = the training FLOP rate divided by the rate of the layer's own
matrix products ([B*T, D] x [D, 4H] and T x [B, H] x [H, 4H]) at their fastest in this run.

Levers (each measured against the same baseline in the same rounds):
    hoist+autodiff   input projection hoisted out of the loop, TensorFlow's gradient of
                     the tf.while_loop (`Recurrent(fast_backward=False)`)
    fast backward    + the hand-written backward pass (the default `Recurrent`)
    XLA train step   the whole train step with `jit_compile=True`
    XLA loop         `Recurrent(jit_compile=True)` (inference)
    bf16             `dtype="mixed_bfloat16"` (bf16 products, float32 states)
    threads          `tf.config.threading` intra/inter-op threads (a child process)

The machine's CPU model and its kernel flags (`benchmarks.host.cpu`) are recorded with the
figures. bf16 speed figures are measured only on a CPU with bf16 matrix kernels (AMX-BF16
or AVX512-BF16): elsewhere TensorFlow emulates bf16 products, so the figures would say
nothing about the lever, and the results say why they are missing (`bf16_skipped`).
The accuracy impact of mixed_bfloat16 is measured on the adding-problem app
(`bf16_accuracy`: same seed and number of steps in float32 and mixed_bfloat16).

The results file holds flat keys (`flatten`): `<section>_<method>_<figure>`, e.g.
`train_recurrent_ratio` (median wall ratio to `keras.layers.LSTM`), `_ratio_min`,
`_ratio_max`, `_cpu_ratio`, `_ms`, `_fraction_of_matmul_peak`; sections `train`,
`inference_b64`, `inference_b1`, `inference_short`, `threads1`, `threads2`,
`cell_<name>`; `bf16_accuracy_<cell>_<policy>_test_mse`. A new run replaces this
machine's figures and keeps those of earlier machines (`amx_...`, the AVX-512/AMX machine
the suite was first measured on); `layers/README.md` shows both
(`python -m benchmarks.summary --write`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

logger = logging.getLogger("benchmarks.rnn_speed")

BATCH, LENGTH, INPUT_DIM, UNITS = 64, 100, 128, 256


def _parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the standard LSTM only (< 2 min)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 7, quick 5)")
    parser.add_argument("--cells", default=None, help="comma-separated cell names (default all)")
    parser.add_argument(
        "--threads", type=int, default=0, help="intra/inter-op threads (0: TF's default)"
    )
    parser.add_argument(
        "--sections",
        default=None,
        help="comma-separated subset of: lstm,inference,cells,threads,bf16_accuracy",
    )
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "rnn_speed.json"))
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--merge", action="store_true", help="keep this machine's figures of the sections not run"
    )
    parser.add_argument("--conditions", default="",
                        help="what else ran on the machine (default: the load averages)")
    return parser.parse_args(argv)


ARGS = _parse_args() if __name__ == "__main__" else None

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

if ARGS is not None and ARGS.threads:
    tf.config.threading.set_intra_op_parallelism_threads(ARGS.threads)
    tf.config.threading.set_inter_op_parallelism_threads(ARGS.threads)

import keras  # noqa: E402

from apps.common.precision import BF16_CPU_FLAGS  # noqa: E402
from benchmarks import host, results_file  # noqa: E402
from layers import CELL_NAMES, Recurrent, build_cell  # noqa: E402

# ---------------------------------------------------------------------------- machine


def bf16_skip_note(processor: dict) -> str | None:
    """Why bf16 speed figures are not measured on the CPU `processor` (`host.cpu()`); None
    where they are."""
    if any(flag in processor["flags"] for flag in BF16_CPU_FLAGS):
        return None
    return (
        f"bf16 speed figures skipped: {processor['model']} has no bf16 matrix kernels "
        f"(none of {', '.join(BF16_CPU_FLAGS)}), so mixed_bfloat16 products would be emulated"
    )


# ---------------------------------------------------------------------------- FLOPs
def forward_flops(cell, batch: int, length: int) -> float:
    """2 * B * T * (D * width(W) + in(R) * width(R) + ...) over the cell's weight matrices."""
    per_token = 0
    for weight in cell.trainable_weights:
        if len(weight.shape) == 2:  # kernel, recurrent_kernel, gate_recurrent_kernel
            per_token += weight.shape[0] * weight.shape[1]
    return 2.0 * batch * length * per_token


# ---------------------------------------------------------------------------- methods
class Method:
    """One thing to time: `run()` does one step and returns something to wait for."""

    def __init__(self, name, run, flops, tokens, lever=""):
        self.name, self.run, self.flops, self.tokens, self.lever = name, run, flops, tokens, lever


def _input_dim(cell_name: str) -> int:
    return UNITS if cell_name in ("mut1", "mut2") else INPUT_DIM  # MUT1/2 need D == units


def _make_layer(kind: str, cell_name: str, dtype=None, **layer_kwargs):
    if kind == "keras_lstm":
        return keras.layers.LSTM(UNITS, return_sequences=True, dtype=dtype, **layer_kwargs)
    if kind == "keras_gru":
        return keras.layers.GRU(UNITS, return_sequences=True, dtype=dtype, **layer_kwargs)
    cell = build_cell(cell_name, UNITS, dtype=dtype)
    if kind == "keras_rnn":
        return keras.layers.RNN(cell, return_sequences=True, dtype=dtype, **layer_kwargs)
    return Recurrent(cell, return_sequences=True, dtype=dtype, **layer_kwargs)


def training_method(
    name,
    kind,
    cell_name="lstm",
    dtype=None,
    jit=False,
    lever="",
    batch=BATCH,
    length=LENGTH,
    layer_kwargs=None,
):
    """One Adam step on `sum(outputs)` of a one-layer model."""
    input_dim = _input_dim(cell_name)
    layer = _make_layer(kind, cell_name, dtype=dtype, **(layer_kwargs or {}))
    inputs = keras.Input((length, input_dim), batch_size=batch)
    outputs = keras.layers.Activation("linear", dtype="float32")(layer(inputs))
    model = keras.Model(inputs, outputs)
    optimizer = keras.optimizers.Adam(1e-4)
    optimizer.build(model.trainable_variables)
    x = tf.random.stateless_normal((batch, length, input_dim), seed=(1, 2))

    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model(x, training=True))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(gradients, model.trainable_variables)
        return loss

    cell = getattr(layer, "cell", None)
    flops = 3 * forward_flops(cell, batch, length)
    return Method(name, tf.function(step, jit_compile=jit), flops, batch * length, lever)


def inference_method(
    name,
    kind,
    cell_name="lstm",
    batch=BATCH,
    length=LENGTH,
    dtype=None,
    jit=False,
    lever="",
    layer_kwargs=None,
):
    input_dim = _input_dim(cell_name)
    layer = _make_layer(kind, cell_name, dtype=dtype, **(layer_kwargs or {}))
    layer.build((batch, length, input_dim))
    x = tf.random.stateless_normal((batch, length, input_dim), seed=(3, 4))
    compiled = tf.function(lambda: layer(x), jit_compile=jit)
    return Method(name, compiled, forward_flops(layer.cell, batch, length), batch * length, lever)


def matmul_peak_methods(batch=BATCH, length=LENGTH, input_dim=INPUT_DIM, units=UNITS):
    """The LSTM's own products at full speed: one [B*T, D] x [D, 4H] and T x [B, H] x [H, 4H]."""
    big_a = tf.random.stateless_normal((batch * length, input_dim), seed=(5, 6))
    big_b = tf.random.stateless_normal((input_dim, 4 * units), seed=(7, 8))
    small_a = tf.random.stateless_normal((batch, units), seed=(9, 10))
    small_b = tf.random.stateless_normal((units, 4 * units), seed=(11, 12)) * 0.01

    big = tf.function(lambda: tf.reduce_sum(tf.matmul(big_a, big_b)))

    @tf.function
    def small():  # a chain, so that nothing is folded away
        def body(i, h):
            return i + 1, tf.matmul(h, small_b)[:, :units]

        return tf.while_loop(lambda i, h: i < length, body, (0, small_a))[1]

    return (
        Method("peak: [B*T,D]x[D,4H]", big, 2.0 * batch * length * input_dim * 4 * units, 0),
        Method("peak: T x [B,H]x[H,4H]", small, 2.0 * batch * length * units * 4 * units, 0),
    )


# ---------------------------------------------------------------------------- timing
def _wait(result):
    for tensor in tf.nest.flatten(result):
        if hasattr(tensor, "numpy"):
            tensor.numpy()


def time_rounds(methods, rounds: int, repeats: int = 1) -> tuple[dict, dict]:
    """After two warm-up calls each, times every method once per round, round-robin:
    per method name, the wall and the process-CPU seconds of one call in each round."""
    for method in methods:
        start = time.perf_counter()
        _wait(method.run())
        _wait(method.run())
        logger.info("warm-up %-40s %.1f s", method.name, time.perf_counter() - start)
    wall = {m.name: [] for m in methods}
    cpu = {m.name: [] for m in methods}
    for _ in range(rounds):
        for method in methods:
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            for _ in range(repeats):
                _wait(method.run())
            wall[method.name].append((time.perf_counter() - wall_start) / repeats)
            cpu[method.name].append((time.process_time() - cpu_start) / repeats)
    return wall, cpu


def round_robin(methods, rounds: int, repeats: int = 1, baseline: str | None = None):
    """Times every method once per round (after a warm-up); returns per-method records."""
    wall, cpu = time_rounds(methods, rounds, repeats)
    baseline = baseline or methods[0].name
    records = {}
    for method in methods:
        wall_ratio = np.array(wall[baseline]) / np.array(wall[method.name])
        cpu_ratio = np.array(cpu[baseline]) / np.array(cpu[method.name])
        records[method.name] = {
            "lever": method.lever,
            "seconds_median": float(np.median(wall[method.name])),
            "seconds_min": float(np.min(wall[method.name])),
            "cpu_seconds_median": float(np.median(cpu[method.name])),
            "ratio": _summary(wall_ratio),
            "cpu_ratio": _summary(cpu_ratio),
            "tokens_per_s": float(method.tokens / np.median(wall[method.name]))
            if method.tokens
            else None,
            "flops": method.flops,
            "gflops_per_s": float(method.flops / np.median(wall[method.name]) / 1e9),
            "gflops_per_s_best": float(method.flops / np.min(wall[method.name]) / 1e9),
        }
    return records


def _summary(values):
    return {
        "median": round(float(np.median(values)), 3),
        "min": round(float(np.min(values)), 3),
        "max": round(float(np.max(values)), 3),
    }


# ---------------------------------------------------------------------------- sections
def section_lstm(rounds: int, quick: bool, bf16: bool):
    """W1 training, standard LSTM: every lever against keras.layers.LSTM (the bf16 ones
    only with `bf16`)."""
    methods = [
        training_method("keras.layers.LSTM", "keras_lstm", lever="baseline"),
        training_method("keras.layers.RNN(LSTMCell)", "keras_rnn", lever="naive cell in keras RNN"),
        training_method(
            "Recurrent, hoist + autodiff",
            "recurrent",
            layer_kwargs={"fast_backward": False},
            lever="hoisted projection",
        ),
        training_method("Recurrent", "recurrent", lever="+ hand-written backward (default)"),
    ]
    if bf16:
        methods.append(
            training_method(
                "Recurrent, mixed_bfloat16",
                "recurrent",
                dtype="mixed_bfloat16",
                lever="+ bf16 products",
            )
        )
    if not quick:
        methods += [
            training_method("Recurrent, XLA train step", "recurrent", jit=True, lever="XLA"),
            training_method(
                "keras.layers.LSTM, XLA train step", "keras_lstm", jit=True, lever="XLA (Keras)"
            ),
        ]
    if bf16 and not quick:
        methods.append(
            training_method(
                "keras.layers.LSTM, mixed_bfloat16",
                "keras_lstm",
                dtype="mixed_bfloat16",
                lever="bf16 (Keras)",
            )
        )
    methods += list(matmul_peak_methods())
    records = round_robin(methods, rounds)
    peak = _peak(records)
    for record in records.values():
        if record["flops"] and record["tokens_per_s"]:
            record["fraction_of_matmul_peak"] = round(record["gflops_per_s"] / peak, 3)
    return {
        "workload": "W1 training",
        "matmul_peak_gflops_per_s": round(peak, 1),
        "methods": records,
    }


def _peak(records):
    big = records["peak: [B*T,D]x[D,4H]"]
    small = records["peak: T x [B,H]x[H,4H]"]
    # At their fastest: the best round of each.
    big_seconds = big["flops"] / (big["gflops_per_s_best"] * 1e9)
    small_seconds = small["flops"] / (small["gflops_per_s_best"] * 1e9)
    return (big["flops"] + small["flops"]) / (big_seconds + small_seconds) / 1e9


def section_inference(rounds: int, quick: bool, bf16: bool):
    sections = {}
    for batch, repeats in ((BATCH, 1), (1, 10)):
        methods = [
            inference_method("keras.layers.LSTM", "keras_lstm", batch=batch, lever="baseline"),
            inference_method("Recurrent", "recurrent", batch=batch, lever="default"),
            inference_method(
                "Recurrent(jit_compile=True)",
                "recurrent",
                batch=batch,
                layer_kwargs={"jit_compile": True},
                lever="XLA loop",
            ),
        ]
        if bf16:
            methods += [
                inference_method(
                    "Recurrent, mixed_bfloat16",
                    "recurrent",
                    batch=batch,
                    dtype="mixed_bfloat16",
                    lever="bf16 products",
                ),
                inference_method(
                    "Recurrent(jit_compile=True), mixed_bfloat16",
                    "recurrent",
                    batch=batch,
                    dtype="mixed_bfloat16",
                    layer_kwargs={"jit_compile": True},
                    lever="XLA loop + bf16",
                ),
            ]
        if not quick:
            methods.append(
                inference_method(
                    "keras.layers.LSTM, XLA",
                    "keras_lstm",
                    batch=batch,
                    jit=True,
                    lever="XLA (Keras)",
                )
            )
        records = round_robin(methods, rounds, repeats=repeats)
        sections[f"batch {batch}"] = {
            "workload": f"inference, batch {batch}, length {LENGTH}",
            "methods": records,
        }
    if not quick:  # short sequences
        methods = [
            inference_method("keras.layers.LSTM", "keras_lstm", length=10, lever="baseline"),
            inference_method("Recurrent", "recurrent", length=10, lever="default"),
            inference_method(
                "keras.layers.LSTM(unroll=True)",
                "keras_lstm",
                length=10,
                layer_kwargs={"unroll": True},
                lever="unrolled (Keras)",
            ),
        ]
        sections["short"] = {
            "workload": f"inference, batch {BATCH}, length 10",
            "methods": round_robin(methods, rounds, repeats=5),
        }
    return sections


def section_cells(rounds: int, cells, bf16: bool):
    """Each cell: Recurrent vs the same cell in keras.layers.RNN vs keras.layers.LSTM."""
    results = {}
    for name in cells:
        methods = [
            training_method("keras.layers.LSTM", "keras_lstm", lever="baseline"),
            training_method("keras.layers.RNN(cell)", "keras_rnn", cell_name=name),
            training_method("Recurrent(cell)", "recurrent", cell_name=name),
        ]
        if bf16:
            methods.append(
                training_method(
                    "Recurrent(cell), mixed_bfloat16",
                    "recurrent",
                    cell_name=name,
                    dtype="mixed_bfloat16",
                )
            )
        if name in ("gru", "gru_cho", "layer_norm_gru"):
            methods.insert(1, training_method("keras.layers.GRU", "keras_gru", lever="Keras GRU"))
        records = round_robin(methods, rounds)
        lstm = records["keras.layers.LSTM"]
        rnn = records["keras.layers.RNN(cell)"]
        for record in records.values():
            # Same FLOPs' worth: FLOP rate relative to keras.layers.LSTM's FLOP rate.
            scale = record["flops"] / lstm["flops"]
            record["flop_rate_ratio_to_keras_lstm"] = {
                key: round(value * scale, 3) for key, value in record["ratio"].items()
            }
            record["cpu_flop_rate_ratio_to_keras_lstm"] = {
                key: round(value * scale, 3) for key, value in record["cpu_ratio"].items()
            }
            record["speedup_over_keras_rnn"] = round(
                rnn["seconds_median"] / record["seconds_median"], 3
            )
            record["cpu_speedup_over_keras_rnn"] = round(
                rnn["cpu_seconds_median"] / record["cpu_seconds_median"], 3
            )
        results[name] = records
        logger.info(
            "%-16s Recurrent: %.2fx keras RNN, %.2fx keras LSTM FLOP rate (cpu %.2fx, %.2fx)",
            name,
            records["Recurrent(cell)"]["speedup_over_keras_rnn"],
            records["Recurrent(cell)"]["flop_rate_ratio_to_keras_lstm"]["median"],
            records["Recurrent(cell)"]["cpu_speedup_over_keras_rnn"],
            records["Recurrent(cell)"]["cpu_flop_rate_ratio_to_keras_lstm"]["median"],
        )
    return results


def section_bf16_accuracy(epochs: int = 8, **sizes):
    """The adding-problem app (apps/adding, T=50, 64 units, or `sizes`: AddingConfig
    fields) trained in float32 and in mixed_bfloat16 from the same seed: test MSE after the
    same number of steps."""
    from apps.adding.config import AddingConfig
    from apps.adding.data import heldout_dataset, train_dataset
    from apps.adding.model import build_model

    sizes = {"length": 50, "units": 64, "train_examples": 20_000, **sizes}
    results = {}
    for policy in ("float32", "mixed_bfloat16"):
        for cell_name in ("lstm", "gru"):
            config = AddingConfig(epochs=epochs, **sizes)
            keras.utils.set_random_seed(0)
            previous = keras.config.dtype_policy()
            keras.config.set_dtype_policy(policy)
            try:
                model = build_model(config, cell_name)
            finally:
                keras.config.set_dtype_policy(previous)
            start = time.perf_counter()
            model.fit(
                train_dataset(config),
                epochs=config.epochs,
                steps_per_epoch=config.steps_per_epoch,
                verbose=0,
            )
            seconds = time.perf_counter() - start
            test_mse = float(
                model.evaluate(heldout_dataset(config, "test"), verbose=0, return_dict=True)["mse"]
            )
            results[f"{cell_name} {policy}"] = {
                "test_mse": round(test_mse, 5),
                "steps": config.epochs * config.steps_per_epoch,
                "seconds": round(seconds, 1),
                "baseline_mse_predicting_1": 0.167,  # the variance of the target sum
            }
            logger.info(
                "adding %s %s: test MSE %.5f (%.0f s)", cell_name, policy, test_mse, seconds
            )
    return results


def section_threads(rounds: int):
    """The W1 LSTM rows again in child processes with 1 and 2 intra/inter-op threads."""
    results = {}
    for threads in (1, 2):
        output = REPO / "benchmarks" / "results" / f".rnn_speed_threads_{threads}.json"
        command = [
            sys.executable,
            "-m",
            "benchmarks.rnn_speed",
            "--threads",
            str(threads),
            "--sections",
            "lstm",
            "--quick",
            "--rounds",
            str(rounds),
            "--output",
            str(output),
        ]
        subprocess.run(command, cwd=REPO, check=True)
        results[f"{threads} threads"] = json.loads(output.read_text())
        output.unlink()
    return results


# ---------------------------------------------------------------------------- report
def print_table(title, records, extra=None):
    print(f"\n{title}")
    header = "| method | lever | ratio to keras LSTM (wall) | cpu-time ratio | ms/step |"
    if extra:
        header += f" {extra[0]} |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for name, record in records.items():
        if name.startswith("peak"):
            continue
        ratio, cpu_ratio = record["ratio"], record["cpu_ratio"]
        row = (
            f"| {name} | {record['lever']} | {ratio['median']:.2f} ({ratio['min']:.2f}-{ratio['max']:.2f}) "
            f"| {cpu_ratio['median']:.2f} ({cpu_ratio['min']:.2f}-{cpu_ratio['max']:.2f}) "
            f"| {record['seconds_median'] * 1e3:.1f} |"
        )
        if extra:
            row += f" {extra[1](record)} |"
        print(row)


#: method name -> the slug of its flat keys (`<section>_<slug>_<figure>`).
METHOD_SLUGS = {
    "keras.layers.LSTM": "keras",
    "keras.layers.GRU": "keras_gru",
    "keras.layers.RNN(LSTMCell)": "keras_rnn",
    "keras.layers.RNN(cell)": "keras_rnn",
    "Recurrent, hoist + autodiff": "autodiff",
    "Recurrent": "recurrent",
    "Recurrent(cell)": "recurrent",
    "Recurrent, mixed_bfloat16": "bf16",
    "Recurrent(cell), mixed_bfloat16": "bf16",
    "Recurrent, stacked records": "stacked_records",
    "Recurrent, XLA train step": "xla",
    "keras.layers.LSTM, XLA train step": "keras_xla",
    "keras.layers.LSTM, mixed_bfloat16": "keras_bf16",
    "Recurrent(jit_compile=True)": "xla",
    "Recurrent(jit_compile=True), mixed_bfloat16": "xla_bf16",
    "keras.layers.LSTM, XLA": "keras_xla",
    "Recurrent, unrolled": "unrolled",
    "keras.layers.LSTM(unroll=True)": "keras_unroll",
}
#: nested section of `main`'s result -> the prefix of its flat keys.
SECTION_PREFIXES = {"batch 64": "inference_b64", "batch 1": "inference_b1", "short": "inference_short"}


def _method_figures(prefix: str, records: dict) -> dict:
    """Flat figures of the methods of one round-robin section (the peak products only as
    the section's peak rate)."""
    flat = {}
    for name, record in records.items():
        if name.startswith("peak"):
            continue
        key = f"{prefix}_{METHOD_SLUGS[name]}"
        for figure in ("ratio", "cpu_ratio"):
            flat[f"{key}_{figure}"] = record[figure]["median"]
            flat[f"{key}_{figure}_min"] = record[figure]["min"]
            flat[f"{key}_{figure}_max"] = record[figure]["max"]
        flat[f"{key}_ms"] = round(record["seconds_median"] * 1e3, 2)
        flat[f"{key}_gflops_per_s"] = round(record["gflops_per_s"], 1)
        for figure in ("fraction_of_matmul_peak", "speedup_over_keras_rnn", "cpu_speedup_over_keras_rnn"):
            if figure in record:
                flat[f"{key}_{figure}"] = record[figure]
        for figure in ("flop_rate_ratio_to_keras_lstm", "cpu_flop_rate_ratio_to_keras_lstm"):
            if figure in record:
                flat[f"{key}_{figure}"] = record[figure]["median"]
    return flat


def flatten(result: dict) -> dict:
    """The flat keys of the results file from `main`'s nested result: per section and
    method (`METHOD_SLUGS`) the median, min and max of the per-round wall and CPU ratios to
    `keras.layers.LSTM`, ms a call and GFLOP/s; per cell `cell_<name>_<method>_...`."""
    flat = {}
    if "lstm" in result:
        flat["train_matmul_peak_gflops_per_s"] = result["lstm"]["matmul_peak_gflops_per_s"]
        flat.update(_method_figures("train", result["lstm"]["methods"]))
    for section, records in result.get("inference", {}).items():
        flat.update(_method_figures(SECTION_PREFIXES[section], records["methods"]))
    for cell, records in result.get("cells", {}).items():
        flat.update(_method_figures(f"cell_{cell}", records))
    for threads, section in result.get("threads", {}).items():
        prefix = f"threads{threads.split()[0]}"
        if "methods" in section:  # a nested section (files written before flat keys)
            section = flatten({"lstm": section})
        flat.update({key.replace("train_", f"{prefix}_", 1): value
                     for key, value in section.items() if key.startswith("train_")})  # fmt: skip
    for name, record in result.get("bf16_accuracy", {}).items():
        cell, policy = name.split()
        flat[f"bf16_accuracy_{cell}_{policy}_test_mse"] = record["test_mse"]
        flat[f"bf16_accuracy_{cell}_{policy}_steps"] = record["steps"]
    return flat


def main(args) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    start = time.perf_counter()
    rounds = args.rounds or (5 if args.quick else 7)
    default_sections = (
        "lstm,inference" if args.quick else "lstm,inference,cells,threads,bf16_accuracy"
    )
    sections = (args.sections or default_sections).split(",")
    cells = args.cells.split(",") if args.cells else list(CELL_NAMES)
    processor = host.cpu()
    bf16_note = bf16_skip_note(processor)
    bf16 = bf16_note is None
    result = {
        "machine": {
            "platform": platform.platform(),
            "cpu_model": processor["model"],
            "cpu_flags": processor["flags"],
            "cpu_count": os.cpu_count(),
            "threads": args.threads or "default",
            "load_average_start": [round(v, 2) for v in os.getloadavg()],
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
        "rounds": rounds,
        "quick": args.quick,
    }
    if bf16_note:
        result["bf16_skipped"] = bf16_note
        logger.info("%s", bf16_note)
    if "lstm" in sections:
        result["lstm"] = section_lstm(rounds, args.quick, bf16)
        print_table(
            f"W1 training (batch {BATCH}, length {LENGTH}, input {INPUT_DIM}, hidden {UNITS}); "
            f"matmul peak {result['lstm']['matmul_peak_gflops_per_s']} GFLOP/s",
            result["lstm"]["methods"],
            ("fraction of fp32 matmul peak", lambda r: r.get("fraction_of_matmul_peak", "")),
        )
    if "inference" in sections:
        result["inference"] = section_inference(rounds, args.quick, bf16)
        for section in result["inference"].values():
            print_table(section["workload"], section["methods"])
    if "cells" in sections:
        result["cells"] = section_cells(rounds, cells, bf16)
        print(
            "\nEvery cell, W1 training: Recurrent(cell) vs keras.layers.RNN(cell) and vs the "
            "same FLOPs' worth of keras.layers.LSTM (wall; cpu-time in brackets)"
        )
        print(
            "| cell | x keras RNN(cell) | x keras LSTM FLOP rate | bf16: x keras LSTM FLOP rate |"
        )
        print("|---|---|---|---|")
        for name, records in result["cells"].items():
            fast = records["Recurrent(cell)"]
            rate = fast["flop_rate_ratio_to_keras_lstm"]
            mixed = records.get("Recurrent(cell), mixed_bfloat16")
            mixed_column = (
                f"{mixed['flop_rate_ratio_to_keras_lstm']['median']:.2f} "
                f"(cpu {mixed['cpu_flop_rate_ratio_to_keras_lstm']['median']:.2f})"
                if mixed
                else "skipped"
            )
            print(
                f"| {name} | {fast['speedup_over_keras_rnn']:.2f} ({fast['cpu_speedup_over_keras_rnn']:.2f}) "
                f"| {rate['median']:.2f} ({rate['min']:.2f}-{rate['max']:.2f}; "
                f"cpu {fast['cpu_flop_rate_ratio_to_keras_lstm']['median']:.2f}) "
                f"| {mixed_column} |"
            )
    if "threads" in sections:
        result["threads"] = section_threads(rounds)
        for name, section in result["threads"].items():  # each child printed its table
            print(f"\nW1 training, {name}: keras.layers.LSTM {section['train_keras_ms']:.1f} ms, "
                  f"Recurrent {section['train_recurrent_ratio']:.2f}x (cpu {section['train_recurrent_cpu_ratio']:.2f}x)")
    if "bf16_accuracy" in sections:
        result["bf16_accuracy"] = section_bf16_accuracy()
        print("\nmixed_bfloat16 accuracy: adding problem (T=50, 64 units), same seed and steps")
        print("| model | test MSE | seconds |")
        print("|---|---|---|")
        for name, record in result["bf16_accuracy"].items():
            print(f"| {name} | {record['test_mse']} | {record['seconds']} |")
    result["machine"]["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    result["wall_seconds"] = round(time.perf_counter() - start, 1)
    if not args.no_write:
        write_results(Path(args.output), result, sections, args)
    return result


#: Prefixes of earlier machines' runs kept in the results file by a new run.
EARLIER_RUNS = ("amx_",)


def write_results(output: Path, result: dict, sections: list[str], args) -> None:
    """Writes the flat figures of `result` with the run's machine, command, date and
    conditions. Figures of earlier machines (`EARLIER_RUNS` prefixes) stay; with
    `--merge`, so do this machine's figures of the sections not run."""
    existing = results_file.read(output)
    kept = {key: value for key, value in existing.items()
            if args.merge or key.startswith(EARLIER_RUNS)}  # fmt: skip
    machine = result["machine"]
    load = machine["load_average_start"] + machine["load_average_end"]
    flat = {
        **kept,
        "machine": host.machine(),
        "cpu_model": machine["cpu_model"],
        "cpu_flags": machine["cpu_flags"],
        "threads": machine["threads"],
        "rounds": result["rounds"],
        "sections": sections if not args.merge else sorted(set(sections) | set(existing.get("sections", []))),
        "conditions": args.conditions or f"load average {min(load):.1f}-{max(load):.1f} (start and end)",
        "wall_seconds": result["wall_seconds"],
        "command": "python -m benchmarks.rnn_speed " + " ".join(sys.argv[1:]),
        "date": datetime.date.today().isoformat(),
        **flatten(result),
    }
    flat.pop("bf16_skipped", None)
    if "bf16_skipped" in result:
        flat["bf16_skipped"] = result["bf16_skipped"]
    results_file.write(output, flat)
    logger.info("wrote %s (%.0f s)", output, result["wall_seconds"])


if __name__ == "__main__":
    main(ARGS)
