"""apps/captioning: a tiny model learns the rendered shapes, COCO-format files and TFDS
mock data as sources, evaluation with baselines and pictures, predict from files and a
folder, the SavedModel reloaded in a fresh process, bad inputs naming the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from apps.captioning.__main__ import main
from apps.captioning.config import CaptioningConfig
from apps.captioning.data import load_split
from apps.common.plots import read_history
from pipelines.errors import DataFormatError, DataUnavailableError
from pipelines.procedural import rendered_shapes_captions

REPO = Path(__file__).resolve().parents[2]
TINY = [
    "--image-size", "32", "--small-cnn-filters", "8", "--units", "64", "--embedding-size", "32",
    "--attention-units", "32", "--dropout", "0", "--batch-size", "32", "--learning-rate", "0.004",
    "--java-metrics", "false", "--plot-images", "2", "--evaluate-beam-widths", "1,3",
    "--maximum-decoding-length", "14", "--verbose", "0", "--min-word-count", "1",
]  # fmt: skip


def write_coco(folder: Path, name: str, count: int, seed: int, captions_per_image: int = 2) -> Path:
    """Rendered-shapes images as PNG and JPEG files and a COCO-format JSON naming them."""
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    data = {"images": [], "annotations": []}
    for index, example in enumerate(rendered_shapes_captions(count, image_size=40, max_shapes=1, seed=seed).as_numpy_iterator()):
        image_id = seed * 1000 + index
        file_name = f"{image_id}.{'png' if index % 2 else 'jpg'}"
        encode = tf.io.encode_png if index % 2 else tf.io.encode_jpeg
        (images / file_name).write_bytes(encode(example["image"]).numpy())
        data["images"].append({"id": image_id, "file_name": file_name})
        caption = example["caption"].decode()
        for copy in range(captions_per_image):
            text = caption.capitalize() + " ." if copy else caption
            data["annotations"].append({"id": image_id * 10 + copy, "image_id": image_id, "caption": text})
    path = folder / f"{name}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    """A tiny attention model trained on one-shape images through the CLI."""
    run_dir = tmp_path_factory.mktemp("captioning") / "run"
    metrics = main([
        "train", "--run-dir", str(run_dir), *TINY, "--shapes-max-shapes", "1",
        "--shapes-train-images", "800", "--shapes-valid-images", "60", "--epochs", "8",
    ])  # fmt: skip
    return run_dir, metrics


@pytest.mark.slow
def test_shapes_model_learns_on_a_tiny_budget(shapes_run):
    run_dir, metrics = shapes_run
    history = read_history(run_dir / "history.csv")
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["val_cider"][-1] > history["val_cider"][0]
    assert metrics["epochs_trained"] == 8
    # It writes better captions than the most frequent one for every image.
    assert metrics["valid_cider_greedy"] > metrics["valid_cider_most_frequent"]
    assert metrics["valid_beats_most_frequent"] is True
    for key in ("valid_bleu_1_beam3", "valid_rouge_l_greedy", "valid_cider_nearest_neighbour",
                "valid_exact_greedy", "valid_images_per_s_beam3", "valid_beats_retrieval"):
        assert key in metrics
    assert (run_dir / "checkpoints" / "best.keras").exists()
    assert (run_dir / "vocab" / "words.txt").exists()
    assert (run_dir / "plots" / "captions_valid_1.png").stat().st_size > 1000
    assert (run_dir / "plots" / "attention_valid_1.png").stat().st_size > 1000
    results = json.loads((run_dir / "captions" / "valid.beam3.json").read_text())
    assert len(results) == 60 and set(results[0]) == {"image_id", "caption"}


@pytest.mark.slow
def test_predict_and_export_reload_in_a_fresh_process(shapes_run, tmp_path, capsys):
    run_dir, _ = shapes_run
    folder = tmp_path / "inputs"
    folder.mkdir()
    examples = list(rendered_shapes_captions(3, image_size=50, max_shapes=1, seed=9).as_numpy_iterator())
    (folder / "a.jpg").write_bytes(tf.io.encode_jpeg(examples[0]["image"]).numpy())
    (folder / "b.png").write_bytes(tf.io.encode_png(examples[1]["image"]).numpy())
    (folder / "c.png").write_bytes(tf.io.encode_png(examples[2]["image"]).numpy())
    rgba = np.concatenate([examples[2]["image"], np.full((50, 50, 1), 255, np.uint8)], -1)
    (folder / "d.png").write_bytes(tf.io.encode_png(rgba).numpy())
    gray = tf.image.rgb_to_grayscale(examples[0]["image"])
    (folder / "e.png").write_bytes(tf.io.encode_png(gray).numpy())
    (folder / "f.jpg").write_bytes(tf.io.encode_jpeg(examples[0]["image"]).numpy()[:40])  # corrupt
    (folder / "g.png").write_bytes(tf.io.encode_png(np.full((1, 1, 3), 90, np.uint8)).numpy())
    captions = main(["predict", "--run-dir", str(run_dir), str(folder)])
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == len(captions) == 7
    assert lines[0].startswith(str(folder / "a.jpg") + "\t") and captions[0]
    assert captions[5] == "" and "f.jpg: not a decodable image" in err
    assert all(captions[i] for i in (0, 1, 2, 3, 4, 6))  # grayscale and 1x1 are captioned too
    assert captions[2] == captions[3]  # the RGBA copy reads as the RGB image

    export_path = main(["export", "--run-dir", str(run_dir)])
    exported = main(["predict", "--run-dir", str(run_dir), "--export-dir", str(export_path), str(folder)])
    assert exported == captions
    script = textwrap.dedent(
        """
        import json, sys
        import tensorflow as tf
        from apps.common.export import load_export
        served = load_export(sys.argv[1])
        images = [open(path, "rb").read() for path in json.loads(sys.argv[2])]
        out = served.signatures["serving_default"](images=tf.constant(images))
        print(json.dumps({"captions": [c.decode() for c in out["captions"].numpy()],
                          "log_probs": out["log_probs"].numpy().tolist(),
                          "valid": out["valid"].numpy().tolist()}))
        """
    )
    paths = [str(path) for path in sorted(folder.iterdir())]
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", script, str(export_path), json.dumps(paths)],
                            capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert served["captions"] == captions
    assert served["valid"] == [True, True, True, True, True, False, True]
    from apps.captioning.tasks import make_captioner
    from apps.common.run_dir import RunDir

    config = CaptioningConfig(**json.loads((run_dir / "config.json").read_text()))
    in_memory = make_captioner(config, RunDir(run_dir)).caption(tf.constant([open(p, "rb").read() for p in paths]))
    np.testing.assert_allclose(served["log_probs"], in_memory["log_probs"].numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_evaluate_records_the_split_and_reuses_stored_images(shapes_run):
    run_dir, _ = shapes_run
    cached = sorted(p.name for p in (run_dir / "cache").iterdir())
    record = main(["evaluate", "--run-dir", str(run_dir), "--evaluate-beam-widths", "1"])
    assert record["split"] == "valid" and record["data"].startswith("shapes seed 1")
    from apps.common.run_dir import RunDir

    latest = RunDir(run_dir).latest_evaluation("valid")
    assert "valid_cider_greedy" in latest and "valid_cider_beam3" not in latest  # only greedy
    assert sorted(p.name for p in (run_dir / "cache").iterdir()) == cached
    test = main(["evaluate", "--run-dir", str(run_dir), "--split", "test", "--shapes-test-images", "30",
                 "--evaluate-beam-widths", "1", "--plot-images", "0"])  # fmt: skip
    assert test["split"] == "test" and test["test_images"] == 30


@pytest.mark.slow
def test_coco_json_frozen_encoder_caches_features_and_fine_tunes(tmp_path):
    train = write_coco(tmp_path, "train", 48, seed=1)
    valid = write_coco(tmp_path, "valid", 12, seed=2)
    run_dir = tmp_path / "run"
    flags = ["--train-json", str(train), "--valid-json", str(valid), "--image-dir", str(tmp_path / "images")]
    metrics = main([
        "train", "--run-dir", str(run_dir), *TINY, *flags, "--decoder", "show_tell",
        "--image-injection", "first_input", "--cell", "gru", "--freeze-encoder", "true",
        "--fine-tune-encoder-after", "1", "--epochs", "2", "--scheduled-sampling-type",
        "inverse_sigmoid", "--scheduled-sampling-k", "5", "--plot-images", "0",
        "--evaluate-beam-widths", "1",
    ])  # fmt: skip
    assert metrics["frozen_epochs"] == 1 and metrics["fine_tuned_epochs"] == 1
    assert metrics["epochs_trained"] == 2 and metrics["train_images"] == 48
    assert metrics["train_captions"] == 96
    features = sorted((run_dir / "cache").glob("features-*-vector-*.npy"))
    assert len(features) >= 2  # train and valid, computed once by the frozen phase
    assert (run_dir / "frozen_phase" / "checkpoints" / "best.keras").exists()
    assert (run_dir / "checkpoints" / "best.keras").exists()
    best = json.loads((run_dir / "config.json").read_text())
    assert best["fine_tune_encoder_after"] == 1


def test_bad_files_give_errors_naming_them(tmp_path):
    train = write_coco(tmp_path, "train", 4, seed=3)
    images = tmp_path / "images"
    config = CaptioningConfig(train_json=str(train), image_dir=str(images), image_size=32)
    first = sorted(images.glob("*.jpg"))[0]
    first.write_bytes(first.read_bytes()[:50])  # a truncated JPEG
    with pytest.raises(DataFormatError, match=rf"{first.name}: not a decodable JPEG/PNG"):
        load_split(config, "train", tmp_path / "cache")
    first.write_bytes(tf.io.encode_jpeg(np.zeros((1, 1, 3), np.uint8)).numpy())
    with pytest.raises(DataFormatError, match=rf"{first.name}: image is 1x1 pixels; at least 8x8"):
        load_split(config, "train", tmp_path / "cache")
    first.unlink()
    with pytest.raises(DataFormatError, match=rf"train\.json: images\[0\] .*{first.name} is missing"):
        load_split(config, "train", tmp_path / "cache")
    assert not any((tmp_path / "cache").glob("images-*.npy"))  # nothing half-written kept


def test_options_are_checked_before_any_work(tmp_path):
    from apps.captioning.__main__ import COMMANDS
    from apps.common.cli import prepare

    run = ["train", "--run-dir", str(tmp_path / "run")]
    for argv, message in [
        (["--train-json", "x.json"], "--dataset coco_json needs --train-json and --image-dir"),
        (["--encoder-weights", "imagenet"], "--encoder small_cnn has no ImageNet weights"),
        (["--fine-tune-encoder-after", "2"], "--fine-tune-encoder-after needs a frozen encoder"),
        (["--freeze-encoder", "true", "--fine-tune-encoder-after", "9", "--epochs", "9"], "leaves no epoch"),
        (["--cider-every-epochs", "0"], "--monitor val_cider needs --cider-every-epochs"),
        (["--decoder", "rnn"], "--decoder must be one of show_tell, attention"),
        (["--train-json", "x.json", "--image-dir", "."], "--monitor val_cider needs validation data"),
    ]:
        with pytest.raises(ValueError, match=message):
            prepare("captioning", CaptioningConfig, COMMANDS, run + argv)
    assert not (tmp_path / "run").exists()


def test_tfds_path_with_mock_data(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    import pipelines.tfds_source

    monkeypatch.setattr(pipelines.tfds_source, "network_available", lambda *a, **k: True)

    config = CaptioningConfig(dataset="coco_captions", tfds_data_dir=str(tmp_path / "tfds"),
                              image_size=16, max_train_images=5)
    with tfds.testing.mock_data(num_examples=7):
        split = load_split(config, "train", tmp_path / "cache")
    assert len(split) == 5 and split.images.shape == (5, 16, 16, 3)
    assert split.name == "TFDS coco_captions/train+restval"
    assert all(refs and all(isinstance(c, str) for c in refs) for refs in split.references)


def test_offline_tfds_fails_fast_naming_local_files(offline_tfds, tmp_path):
    config = CaptioningConfig(dataset="coco_captions", tfds_data_dir=str(tmp_path / "empty"))
    with pytest.raises(DataUnavailableError, match="--train-json FILE --valid-json FILE"):
        load_split(config, "train", tmp_path / "cache")
