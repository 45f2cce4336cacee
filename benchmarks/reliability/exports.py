"""Calling the apps' exports with batches, and comparing what they return: shared by the
serving trials of the campaign and by tests/apps/test_export_batches.py.

A `Call` is one call of a signature with numpy inputs and a function that cuts its outputs
into the batch's elements; each app has a function from a list of elements (texts, or
token lists for tagging) to its calls. `assert_same` compares outputs element by element,
`CODEC` carries arrays (any bytes) through JSON to a process without the suite's source,
and `FRESH_PROCESS_SCRIPT` is the program such a process runs.
"""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Callable

import numpy as np
import tensorflow as tf

LONG = ("Paris lives " * 10_000)[:100_000]  # a 100,000-character string
STRINGS = [
    b"",
    LONG.encode(),
    b"caf\xc3 \xff\xfe invalid \x80 UTF-8",
    "Zürich 😀 👍🏽 Très".encode(),
    b"the big dog sees the cat",
    b"Alice met Bob in Paris .",
]
SENTENCES = [  # tagging inputs: token lists (an empty sentence, an empty token, ...)
    [],
    [b""],
    [LONG.encode()],
    [b"caf\xc3", b"\xff\xfe", b"\x80"],
    ["Zürich".encode(), "😀".encode(), b"", b"Paris"],
    [b"Alice", b"met", b"Bob", b"in", b"Paris", b"."],
]


@dataclasses.dataclass
class Call:
    """One signature call: its inputs (numpy arrays) and how to cut its outputs into the
    elements of the batch."""

    signature: str
    inputs: dict[str, np.ndarray]
    split: Callable[[dict[str, np.ndarray]], list[dict]]


def rows(outputs: dict[str, np.ndarray]) -> list[dict]:
    """Per-element outputs of a signature whose outputs all have the batch first."""
    count = len(next(iter(outputs.values())))
    return [{key: value[index] for key, value in outputs.items()} for index in range(count)]


def strings(values) -> np.ndarray:
    return np.array(list(values), dtype=object).reshape([-1])


def text_calls(signature: str, argument: str, **scalars) -> Callable[[list], list[Call]]:
    def calls(texts: list[bytes]) -> list[Call]:
        inputs = {argument: strings(texts), **{k: np.array(v) for k, v in scalars.items()}}
        return [Call(signature, inputs, rows)]

    return calls


def tagging_calls(sentences: list[list[bytes]]) -> list[Call]:
    width = max([len(s) for s in sentences], default=0)
    padded_rows = [s + [b""] * (width - len(s)) for s in sentences]
    padded = np.array(padded_rows, dtype=object).reshape([len(sentences), width])

    def dense(outputs):
        assert outputs["tags"].shape == padded.shape and outputs["tag_ids"].shape == padded.shape
        elements = []
        for tags, ids, length in zip(outputs["tags"], outputs["tag_ids"], outputs["lengths"]):
            assert all(tag == b"" for tag in tags[length:]) and not ids[length:].any()
            elements.append({"tags": tags[:length], "tag_ids": ids[:length], "lengths": length})
        return elements

    lengths = np.array([len(s) for s in sentences], np.int64)

    def flat(outputs):
        values = outputs["tag_values"]
        assert len(values) == lengths.sum()
        return [{"tags": row} for row in np.split(values, np.cumsum(lengths)[:-1])] if len(lengths) else []

    values = strings(token for sentence in sentences for token in sentence)
    return [
        Call("serving_default", {"tokens": padded}, dense),
        Call("tag_flat", {"token_values": values, "row_lengths": lengths}, flat),
    ]


def lm_calls(texts: list[bytes]) -> list[Call]:
    """Greedy generation (deterministic) and scoring."""
    prompts = strings(texts)
    return [
        Call("generate", {"prompts": prompts, "num_tokens": np.int32(4), "temperature": np.float32(0)}, rows),
        Call("score", {"texts": prompts}, rows),
    ]


def sequence_calls(sequences: list[np.ndarray]) -> list[Call]:
    """The adding export (`model.export`): float sequences [batch, T, 2] -> [batch, 1]."""
    shape = sequences[0].shape if sequences else (0, 2)
    batch = np.stack(sequences).astype("float32") if sequences else np.zeros((0, *shape), "float32")
    return [Call("serving_default", {"inputs": batch}, lambda outputs: rows(outputs))]


def tensor(value: np.ndarray) -> tf.Tensor:
    return tf.constant(value, tf.string) if value.dtype == object else tf.constant(value)


def run_call(served, call: Call) -> dict[str, np.ndarray]:
    inputs = {key: tensor(value) for key, value in call.inputs.items()}
    return {key: value.numpy() for key, value in served.signatures[call.signature](**inputs).items()}


def assert_same(got: dict, expected: dict, where: str) -> None:
    assert sorted(got) == sorted(expected), where
    for key, value in expected.items():
        value, other = np.asarray(value), np.asarray(got[key])
        assert value.shape == other.shape, f"{where} {key}: shape {other.shape} != {value.shape}"
        if value.dtype.kind in "fc":
            np.testing.assert_allclose(other, value, rtol=1e-5, atol=1e-5, err_msg=f"{where} {key}")
        else:
            assert other.tolist() == value.tolist(), f"{where} {key}"


#: Arrays to and from JSON (strings as base64: they may be any bytes), here and in the
#: fresh process.
CODEC = textwrap.dedent(
    """
    import base64
    import numpy as np

    def encode(value):
        value = np.asarray(value)
        flat = value.reshape([-1]).tolist()
        if value.dtype == object:
            flat = [base64.b64encode(item).decode("ascii") for item in flat]
        return {"dtype": str(value.dtype), "shape": list(value.shape), "value": flat}

    def decode(item):
        if item["dtype"] == "object":
            flat = [base64.b64decode(text) for text in item["value"]]
            return np.array(flat, dtype=object).reshape(item["shape"])
        return np.array(item["value"], dtype=item["dtype"]).reshape(item["shape"])
    """
)
codec: dict = {}
exec(CODEC, codec)

#: What a process without the suite runs: plain `tf.saved_model.load` (tensorflow_text
#: imported for the SentencePiece ops) of each export of plan.json, each call, its
#: outputs into results.json; it fails if the suite's source is importable.
FRESH_PROCESS_SCRIPT = CODEC + textwrap.dedent(
    """
    import importlib.util, json
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the SentencePiece ops)

    assert importlib.util.find_spec("apps") is None, "the suite's source is importable"
    loaded, results = {}, []
    for step in json.load(open("plan.json")):
        if step["export"] not in loaded:
            loaded[step["export"]] = tf.saved_model.load(step["export"])
        inputs = {}
        for key, item in step["inputs"].items():
            value = decode(item)
            inputs[key] = tf.constant(value, tf.string if value.dtype == object else None)
        outputs = loaded[step["export"]].signatures[step["signature"]](**inputs)
        results.append({key: encode(value.numpy()) for key, value in outputs.items()})
    json.dump(results, open("results.json", "w"))
    """
)


def fresh_process_plan(export: str, calls: list[Call]) -> list[dict]:
    """The plan.json steps of `calls` on `export`."""
    return [{"export": export, "signature": call.signature,
             "inputs": {key: codec["encode"](value) for key, value in call.inputs.items()}}
            for call in calls]  # fmt: skip


def fresh_environment() -> dict[str, str]:
    """The environment of a process that must not see the suite's source."""
    import os

    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env
