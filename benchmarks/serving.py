"""Serving speed of every app's SavedModel, against the same model exported the plain way.

    python -m benchmarks.serving                       # every app; writes benchmarks/results/serving.json
    python -m benchmarks.serving --apps sentiment --train-minutes 2 --requests 64   # a quick look

For each app a run is trained by its README recipe (`benchmarks.recipes`) for
`--train-minutes` (a run directory under `--runs-root` that holds a checkpoint is reused),
then exported three ways and loaded back, as a server loads it:

    fast    what `python -m apps.<app> export` writes: the serving levers of
            `apps.common.serving` (XLA loops and searches compiled per bucket of shapes,
            rows of a batched request grouped by length)
    plain   the same weights with Keras' built-in layers where the maths allows
            (`keras.layers.LSTM`/`GRU`/`LSTMCell` in place of the suite's standard LSTM/GRU
            layers and cells, the rest the suite's), without the levers
    suite   the suite's layers without the levers (the export before the levers)

Captioning has no Keras built-in twin (its decoder steps a cell inside the search), so
its plain export is the suite's without the levers (`plain_keras_layers` none).

Requests are validation examples in their own lengths (review texts, dev sentences,
validation source sentences, validation lines as prompts and texts, validation images as
their JPEG files, taken in turn when there are fewer than `--requests`). Latency: each of
`--requests` requests alone (batch 1), the three exports in turn for each request after a
first pass over all of them (which compiles the XLA programs: its time is recorded as
`_first_pass_s`); p50 and p99. Throughput: the same requests in batches of 64, every
batch through every export in turn, `--rounds` times after a first pass; requests per
second from the median round. Ratios are speed-ups over the plain export
(`<subject>_b1_ratio_vs_plain` = plain p50 / fast p50; `<subject>_b64_ratio_vs_plain`
= fast / plain throughput). Every output of the fast export is compared with the plain
export's: `_identical_fraction` of the requests with equal strings, tags or tokens, and
`_max_abs_diff` of the float outputs.

bf16 weights for serving are not measured on a CPU without bf16 matrix kernels
(`bf16_skipped`, as in `benchmarks.rnn_speed`).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "serving.json"
VARIANTS = ("fast", "plain", "suite")

logger = logging.getLogger("benchmarks.serving")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serving", description=__doc__.split("\n")[0])
    parser.add_argument("--apps", default="sentiment,tagging,translation,language_model,captioning",
                        help="comma-separated apps")
    parser.add_argument("--runs-root", default=str(REPO / "runs" / "serving"),
                        help="where the runs to serve are trained (reused when present)")
    parser.add_argument("--train-minutes", type=float, default=4.0,
                        help="training budget of each run (translation: 3x)")
    parser.add_argument("--requests", type=int, default=256, help="validation requests per subject (>= 200)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the batched throughput")
    parser.add_argument("--batch-size", type=int, default=64, help="requests a batch (throughput)")
    parser.add_argument("--num-tokens", type=int, default=64, help="tokens a language-model request generates")
    parser.add_argument("--output", default=str(RESULTS))
    parser.add_argument("--conditions", default="", help="what else ran on the machine")
    return parser.parse_args(argv)


# --------------------------------------------------------------------------- subjects


@dataclasses.dataclass
class Subject:
    """One served signature of an app: how to build its module, its requests, and how a
    batch of requests is sent to a loaded export."""

    name: str
    app: str
    module: Callable  # (run_dir, config, options) -> (tf.Module, {signature name: function})
    requests: Callable  # (config, count) -> list of request elements
    call: Callable  # (loaded export, elements) -> {output: numpy array}
    size: Callable = len  # a request's length (tokens, characters)


def _sentiment_module(run_dir, config, options):
    from apps.common.cli import RunContext
    from apps.sentiment import tasks

    module = tasks.make_server(RunContext("sentiment", config, run_dir, None), options)
    return module, {"serving_default": module.serve}


def _sentiment_requests(config, count):
    from apps.sentiment.data import load_split, train_validation_split

    texts, labels = load_split(config, "train")
    _, (validation, _) = train_validation_split(texts, labels, config.valid_fraction, config.seed)
    return [str(text) for text in validation[:count]]


def _texts_call(argument: str, signature: str = "serving_default", **scalars):
    def call(loaded, elements):
        import tensorflow as tf

        inputs = {argument: tf.constant(elements, tf.string), **{k: tf.constant(v) for k, v in scalars.items()}}
        return {key: value.numpy() for key, value in loaded.signatures[signature](**inputs).items()}

    return call


def _tagging_module(run_dir, config, options):
    from apps.tagging import tasks

    module = tasks.make_module(run_dir, config, options)
    return module, module.signatures()


def _tagging_requests(config, count):
    from apps.tagging.data import load_split

    return [list(tokens) for tokens in load_split(config, "dev").tokens[:count]]


def _tagging_call(loaded, sentences):
    import numpy as np
    import tensorflow as tf

    width = max(len(sentence) for sentence in sentences)
    padded = np.array([s + [""] * (width - len(s)) for s in sentences], dtype=object)
    outputs = loaded.signatures["serving_default"](tokens=tf.constant(padded, tf.string))
    return {key: value.numpy() for key, value in outputs.items()}


def _translation_module(beam_width: int):
    def module(run_dir, config, options):
        from apps.translation import tasks

        translator = tasks.make_translator(config, *tasks.load_models(run_dir), beam_width=beam_width,
                                           options=options)  # fmt: skip
        return translator, {"serving_default": translator.translate}

    return module


def _translation_requests(config, count):
    from apps.translation.data import read_split_examples

    sources, _ = read_split_examples(config, "valid")
    return sources[:count]


def _lm_module(run_dir, config, options):
    from apps.language_model import tasks

    generator = tasks.load_generator(run_dir, config, options)
    return generator, generator.signatures()


def _lm_requests(config, count):
    from apps.language_model.data import load_texts

    lines = [line for line in load_texts(config)["valid"].splitlines() if line.strip()]
    return lines[:count]


def _captioning_module(beam_width: int):
    def module(run_dir, config, options):
        from apps.captioning import tasks

        captioner = tasks.make_captioner(config, run_dir, options, beam_width=beam_width)
        return captioner, {"serving_default": captioner.caption}

    return module


def _captioning_requests(config, count):
    """The validation images' file contents (JPEG bytes as stored), repeated in turn up
    to `count` requests when the split has fewer images."""
    import json

    folder = Path(config.valid_image_dir or config.image_dir)
    names = [image["file_name"] for image in json.loads(Path(config.valid_json).read_text())["images"]]
    contents = [(folder / name).read_bytes() for name in names[:count]]
    return [contents[index % len(contents)] for index in range(count)]


def subjects(num_tokens: int) -> dict[str, list[Subject]]:
    """app -> its served signatures."""
    texts = _texts_call
    return {
        "sentiment": [Subject("sentiment", "sentiment", _sentiment_module, _sentiment_requests,
                              texts("texts"), size=lambda text: len(text.split()))],
        "tagging": [Subject("tagging", "tagging", _tagging_module, _tagging_requests, _tagging_call)],
        "translation": [
            Subject(f"translation_{name}", "translation", _translation_module(beam), _translation_requests,
                    texts("sources"), size=lambda text: len(text.split()))
            for name, beam in (("greedy", 1), ("beam5", 5))
        ],
        "language_model": [
            Subject("language_model_generate", "language_model", _lm_module, _lm_requests,
                    texts("prompts", "generate", num_tokens=num_tokens, temperature=0.0)),
            Subject("language_model_score", "language_model", _lm_module, _lm_requests,
                    texts("texts", "score")),
        ],
        "captioning": [
            Subject(f"captioning_{name}", "captioning", _captioning_module(beam), _captioning_requests,
                    texts("images"), size=lambda image: len(image) / 1024)
            for name, beam in (("greedy", 1), ("beam5", 5))
        ],
    }  # fmt: skip


# --------------------------------------------------------------------------- the plain twin


def keras_twins(module) -> list:
    """Puts Keras' built-in recurrent layers in place of the suite's standard ones in the
    models of `module` (same weights), and `keras.layers.LSTMCell`/`GRUCell` in place of
    the cells of a language model's step function; returns the Keras layers made (tracked
    by `module`, so that it saves them)."""
    import keras

    import layers
    from layers.recurrent import cudnn_kind

    twins = []
    models = [value for value in vars(module).values() if isinstance(value, keras.layers.Layer)]
    models += [m for value in vars(module).values() if isinstance(value, (list, tuple))
               for m in value if isinstance(m, keras.layers.Layer)]  # fmt: skip
    for model in models:
        for layer in model._flatten_layers(include_self=True, recursive=True):
            if isinstance(layer, layers.Recurrent) and cudnn_kind(layer.cell):
                twins.append(_twin_layer(layer, cudnn_kind(layer.cell)))
    stepper = getattr(module, "stepper", None)
    if stepper is not None:
        stepper.cells = [_twin_cell(cell) if cudnn_kind(cell) else cell for cell in stepper.cells]
        twins += [cell for cell in stepper.cells if type(cell).__module__.startswith("keras")]
    module.keras_twin_variables = [variable.value for twin in twins for variable in twin.weights]
    return twins


def _standard_weights(cell) -> list:
    return cell.get_weights()[:3]  # kernel, recurrent_kernel, bias: the Keras layout


def _twin_cell(cell):
    import keras

    from layers.recurrent import cudnn_kind

    cls = keras.layers.LSTMCell if cudnn_kind(cell) == "lstm" else keras.layers.GRUCell
    twin = cls(cell.units, dtype=cell.dtype_policy)
    twin.build((None, cell.kernel.shape[0]))
    twin.set_weights(_standard_weights(cell))
    return twin


def _twin_layer(layer, kind: str):
    import keras

    cls = keras.layers.LSTM if kind == "lstm" else keras.layers.GRU
    twin = cls(layer.cell.units, return_sequences=layer.return_sequences, return_state=layer.return_state,
               go_backwards=layer.go_backwards, dtype=layer.dtype_policy)  # fmt: skip
    twin.build((None, None, layer.cell.kernel.shape[0]))
    twin.cell.set_weights(_standard_weights(layer.cell))

    def call(sequences, initial_state=None, mask=None, training=False):
        return twin(sequences, initial_state=initial_state, mask=mask, training=training)

    layer.call = call  # the layer object stays where the model holds it
    return twin


# --------------------------------------------------------------------------- timing


def _timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def latency(calls: dict, requests: list) -> tuple[dict, dict, dict]:
    """Per export: the first pass's seconds (compiles included), then each request alone,
    the exports in turn (rotating who goes first): (first-pass seconds, per-request
    seconds, per-request outputs of the timed pass)."""
    first = {name: sum(_timed(call, [request])[0] for request in requests) for name, call in calls.items()}
    seconds = {name: [] for name in calls}
    outputs = {name: [] for name in calls}
    names = list(calls)
    for index, request in enumerate(requests):
        for name in names[index % len(names):] + names[: index % len(names)]:
            elapsed, result = _timed(calls[name], [request])
            seconds[name].append(elapsed)
            outputs[name].append(result)
    return first, seconds, outputs


def throughput(calls: dict, batches: list, rounds: int) -> tuple[dict, dict, dict]:
    """Per export: the first pass's seconds over all batches, then per round the seconds of
    all batches (exports in turn within a round), and the outputs of the last round."""
    first = {name: sum(_timed(call, batch)[0] for batch in batches) for name, call in calls.items()}
    seconds = {name: [] for name in calls}
    outputs = {}
    names = list(calls)
    for round_index in range(rounds):
        for name in names[round_index % len(names):] + names[: round_index % len(names)]:
            results = [_timed(calls[name], batch) for batch in batches]
            seconds[name].append(sum(elapsed for elapsed, _ in results))
            outputs[name] = [result for _, result in results]
    return first, seconds, outputs


def compare(fast: list[dict], plain: list[dict]) -> tuple[float, float]:
    """(fraction of calls whose non-float outputs are equal, max |difference| of floats)."""
    import numpy as np

    equal, worst = 0, 0.0
    for got, expected in zip(fast, plain):
        same = True
        for key, value in expected.items():
            value, other = np.asarray(value), np.asarray(got[key])
            if value.dtype.kind == "f":
                if value.size:
                    worst = max(worst, float(np.max(np.abs(other.astype(np.float64) - value))))
            else:
                same = same and value.shape == other.shape and other.tolist() == value.tolist()
        equal += same
    return equal / max(len(plain), 1), worst


# --------------------------------------------------------------------------- running


def train_run(app: str, run_dir: Path, minutes: float) -> None:
    """Trains `run_dir` by `app`'s recipe unless it already holds a checkpoint."""
    import importlib

    from benchmarks.recipes import recipe

    if (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir()):
        logger.info("%s: reusing %s", app, run_dir)
        return
    main = importlib.import_module(f"apps.{app}.__main__").main
    main(["train", *recipe(app, "--run-dir", str(run_dir), "--max-train-minutes", str(minutes), "--verbose", "2")])


def _config(app: str, run_dir):
    from apps.common.config import load_config

    config_classes = {
        "sentiment": "apps.sentiment.config:SentimentConfig", "tagging": "apps.tagging.config:TaggingConfig",
        "translation": "apps.translation.config:TranslationConfig",
        "language_model": "apps.language_model.config:LanguageModelConfig",
        "captioning": "apps.captioning.config:CaptioningConfig",
    }  # fmt: skip
    import importlib

    module, _, name = config_classes[app].partition(":")
    return load_config(getattr(importlib.import_module(module), name), run_dir.config_path)


def export_variants(subject: Subject, run_dir, config, folder: Path) -> dict:
    """The three exports of `subject` saved under `folder` and loaded back: name -> (loaded
    export, seconds to build and save it, what the plain twin holds)."""
    import tensorflow as tf

    from apps.common.export import load_export
    from apps.common.serving import ServingOptions

    exports = {}
    for variant in VARIANTS:
        start = time.perf_counter()
        options = ServingOptions() if variant == "fast" else ServingOptions.plain()
        module, signatures = subject.module(run_dir, config, options)
        twins = keras_twins(module) if variant == "plain" else []
        path = folder / subject.name / variant
        tf.saved_model.save(module, str(path), signatures=signatures)
        seconds = time.perf_counter() - start
        held = sorted({type(twin).__name__ for twin in twins})
        exports[variant] = (load_export(path), seconds, held)
        logger.info("%s %s export: %.1f s%s", subject.name, variant, seconds, f" (Keras {held})" if held else "")
    return exports


def measure(subject: Subject, run_dir, config, args, folder: Path) -> dict:
    import numpy as np

    exports = export_variants(subject, run_dir, config, folder)
    calls = {name: (lambda elements, loaded=loaded: subject.call(loaded, elements))
             for name, (loaded, _, _) in exports.items()}  # fmt: skip
    requests = subject.requests(config, args.requests)
    random.Random(0).shuffle(requests)
    sizes = [subject.size(request) for request in requests]
    flat = {"requests": len(requests), "request_size_median": float(np.median(sizes)),
            "request_size_max": int(max(sizes)), "plain_keras_layers": ", ".join(exports["plain"][2]) or "none"}
    for variant, (_, seconds, _) in exports.items():
        flat[f"{variant}_export_s"] = round(seconds, 1)

    first, seconds, outputs = latency(calls, requests)
    for variant in VARIANTS:
        key = "" if variant == "fast" else f"{variant}_"
        flat[f"{key}b1_p50_ms"] = round(1e3 * float(np.median(seconds[variant])), 2)
        flat[f"{key}b1_p99_ms"] = round(1e3 * float(np.percentile(seconds[variant], 99)), 2)
        flat[f"{key}b1_first_pass_s"] = round(first[variant], 1)
    flat["b1_ratio_vs_plain"] = round(flat["plain_b1_p50_ms"] / flat["b1_p50_ms"], 3)
    flat["b1_ratio_vs_suite"] = round(flat["suite_b1_p50_ms"] / flat["b1_p50_ms"], 3)
    flat["b1_identical_fraction"], flat["b1_max_abs_diff"] = compare(outputs["fast"], outputs["plain"])
    logger.info("%s batch 1: p50 %.2f ms fast, %.2f plain, %.2f suite", subject.name, flat["b1_p50_ms"],
                flat["plain_b1_p50_ms"], flat["suite_b1_p50_ms"])  # fmt: skip

    size = args.batch_size
    batches = [requests[start : start + size] for start in range(0, len(requests) - size + 1, size)]
    first, seconds, outputs = throughput(calls, batches, args.rounds)
    count = sum(len(batch) for batch in batches)
    b = f"b{size}"
    for variant in VARIANTS:
        key = "" if variant == "fast" else f"{variant}_"
        flat[f"{key}{b}_per_s"] = round(count / float(np.median(seconds[variant])), 2)
        flat[f"{key}{b}_first_pass_s"] = round(first[variant], 1)
    ratios = np.array(seconds["plain"]) / np.array(seconds["fast"])
    flat[f"{b}_ratio_vs_plain"] = round(float(np.median(ratios)), 3)
    flat[f"{b}_ratio_vs_suite"] = round(float(np.median(np.array(seconds["suite"]) / np.array(seconds["fast"]))), 3)
    flat[f"{b}_identical_fraction"], flat[f"{b}_max_abs_diff"] = compare(outputs["fast"], outputs["plain"])
    logger.info("%s batch %d: %.1f/s fast, %.1f plain, %.1f suite", subject.name, size, flat[f"{b}_per_s"],
                flat[f"plain_{b}_per_s"], flat[f"suite_{b}_per_s"])  # fmt: skip
    return {f"{subject.name}_{key}": value for key, value in flat.items()}


def main(argv=None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import tensorflow as tf  # noqa: F401  (after the arguments: --help answers at once)

    from apps.common.run_dir import RunDir

    started = time.perf_counter()
    runs_root = Path(args.runs_root)
    load = [os.getloadavg()[0]]
    flat, results = {}, {}
    every = subjects(args.num_tokens)
    for app in args.apps.split(","):
        if app not in every:
            raise SystemExit(f"error: no serving subject for app {app!r} (known: {sorted(every)})")
        run_dir = runs_root / app
        minutes = args.train_minutes * (3 if app == "translation" else 1)
        train_run(app, run_dir, minutes)
        config = _config(app, RunDir(run_dir))
        flat[f"{app}_train_minutes"] = minutes
        flat[f"{app}_train_command"] = "python -m apps.{} train {}".format(
            app, " ".join(["--run-dir", f"runs/serving/{app}", *_shown_recipe(app, minutes)]))
        flat[f"{app}_benchmark_command"] = _command(argv)
        for subject in every[app]:
            flat.update(measure(subject, RunDir(run_dir), config, args, runs_root / "exports"))
            load.append(os.getloadavg()[0])
            results = _write(args, argv, flat, load, started)  # after each subject: a later failure keeps it
    return results


def _write(args, argv, flat: dict, load: list, started: float) -> dict:
    """Merges `flat` and the run's record into the results file; returns its contents."""
    from benchmarks import host, results_file
    from benchmarks.rnn_speed import bf16_skip_note

    results = results_file.merge_run(Path(args.output), flat, command=_command(argv), conditions=args.conditions,
                                     load=load, started=started, bf16_skipped=bf16_skip_note(host.cpu()) or "")  # fmt: skip
    logger.info("wrote %s", args.output)
    return results


def _command(argv) -> str:
    return "python -m benchmarks.serving " + " ".join(argv if argv is not None else sys.argv[1:])


def _shown_recipe(app: str, minutes: float) -> list[str]:
    from benchmarks.recipes import DATA_ROOT, recipe

    return [arg.replace(DATA_ROOT, "../shared/data") for arg in recipe(app, "--max-train-minutes", f"{minutes:g}")]


if __name__ == "__main__":
    main()
