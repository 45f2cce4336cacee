"""Probe of one lever of `layers.Recurrent` on CPU: the element-wise work of each step under XLA.

With `loop_options(fuse_elementwise=True)` (see `_FusedStep` in `layers/_tf_ops.py`) the
element-wise parts of every step, and of every step's vector-Jacobian product in the
hand-written backward pass, run as XLA clusters, while the recurrent products `h R` and
`g R^T` stay TensorFlow's oneDNN kernels. This script times the W1 training step (batch
64, length 100, input 128, hidden 256, Adam, `sum(outputs)` loss) of `Recurrent` as it is
against the same layer with the lever on, and `keras.layers.LSTM` as the baseline, in one
process, round-robin after a warm-up. Figures are medians (min-max) over rounds of
per-round ratios, in wall time and in process CPU time (`time.process_time`, all threads),
the latter being the one to trust on a machine shared with other jobs.

    python -m benchmarks.fused_step_probe                      # LSTM, 7 rounds (< 3 min)
    python -m benchmarks.fused_step_probe --cells layer_norm_lstm,gru --rounds 5
    python -m benchmarks.fused_step_probe --threads 1     # one intra/inter-op thread

Prints a table and a JSON line; writes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from benchmarks.rnn_speed import time_rounds, training_method  # noqa: E402


def _parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", default="lstm", help="comma-separated cell names")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (>= 5)")
    parser.add_argument("--repeats", type=int, default=3, help="train steps per timing")
    parser.add_argument(
        "--no-keras", action="store_true", help="leave out the keras.layers.LSTM baseline"
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="intra/inter-op threads (0: TF's default)"
    )
    return parser.parse_args(argv)


def _methods(cells, with_keras: bool):
    methods = []
    if with_keras:
        methods.append(training_method("keras.layers.LSTM", "keras_lstm"))
    for cell in cells:
        methods.append(training_method(f"Recurrent({cell})", "recurrent", cell_name=cell))
        methods.append(
            training_method(
                f"Recurrent({cell}), fused",
                "recurrent",
                cell_name=cell,
                options={"fuse_elementwise": True},
            )
        )
    return methods


def _times(methods, rounds: int, repeats: int):
    """Per method, per round: (wall seconds, CPU seconds) of one train step."""
    wall, cpu = time_rounds(methods, rounds, repeats)
    return {name: np.array(v) for name, v in wall.items()}, {name: np.array(v) for name, v in cpu.items()}


def _summary(ratios):
    return {
        "median": round(float(np.median(ratios)), 3),
        "min": round(float(np.min(ratios)), 3),
        "max": round(float(np.max(ratios)), 3),
    }


def main(argv=None) -> dict:
    args = _parse_args(argv)
    if args.threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    with_keras = not args.no_keras
    methods = _methods(cells, with_keras)
    load_before = os.getloadavg()
    start = time.perf_counter()
    wall, cpu = _times(methods, args.rounds, args.repeats)
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "rounds": args.rounds,
        "repeats": args.repeats,
        "threads": args.threads or "default",
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "seconds": round(time.perf_counter() - start, 1),
        "ms_per_step": {
            name: {
                "wall": round(1e3 * float(np.median(wall[name])), 1),
                "cpu": round(1e3 * float(np.median(cpu[name])), 1),
            }
            for name in wall
        },
        "fused_vs_today": {},
        "vs_keras_lstm": {},
    }
    for cell in cells:
        today, fused = f"Recurrent({cell})", f"Recurrent({cell}), fused"
        result["fused_vs_today"][cell] = {  # > 1: the fused path is faster
            "wall": _summary(wall[today] / wall[fused]),
            "cpu": _summary(cpu[today] / cpu[fused]),
        }
    if with_keras:
        for name in wall:
            result["vs_keras_lstm"][name] = {
                "wall": _summary(wall["keras.layers.LSTM"] / wall[name]),
                "cpu": _summary(cpu["keras.layers.LSTM"] / cpu[name]),
            }
    print(f"{'method':32s} {'wall ms':>8s} {'cpu ms':>8s}  x keras LSTM (wall / cpu)")
    for name, times in result["ms_per_step"].items():
        versus = result["vs_keras_lstm"].get(name)
        ratio = f"{versus['wall']['median']:.2f} / {versus['cpu']['median']:.2f}" if versus else ""
        print(f"{name:32s} {times['wall']:8.1f} {times['cpu']:8.1f}  {ratio}")
    for cell, ratios in result["fused_vs_today"].items():
        wall_r, cpu_r = ratios["wall"], ratios["cpu"]
        print(
            f"fused vs today, {cell}: wall {wall_r['median']:.3f} ({wall_r['min']:.2f}-"
            f"{wall_r['max']:.2f}), cpu {cpu_r['median']:.3f} ({cpu_r['min']:.2f}-{cpu_r['max']:.2f})"
        )
    print(
        f"load average before {result['load_average_before']}, after {result['load_average_after']}"
    )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
