"""apps/captioning model and decoding: greedy equals a beam of one token for token, a
large beam finds the brute-force best caption of a tiny random model, attention weights
sum to 1 over the grid, the doubly stochastic penalty against NumPy, any cell and both
decoders save and load, encoders by name, caption text in the graph, the XLA serving
lever captions as the plain signature."""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from apps.captioning import encoders
from apps.captioning.config import ENCODERS
from apps.captioning.inference import Captioner, alignments_of
from apps.captioning.model import CaptionModel
from apps.captioning.text import CaptionText
from apps.common.serving import ServingOptions
from pipelines.tokenizers import BOS_ID, EOS_ID

WORDS = CaptionText("words", ["", "<unk>", "<start>", "<end>", "red", "circle"])


def tiny_model(**kwargs) -> CaptionModel:
    options = dict(image_size=16, small_cnn_filters=4, units=8, embedding_size=4,
                   attention_units=4, dropout=0.0)
    options.update(kwargs)
    model = CaptionModel(kwargs.pop("vocab_size", 6), **{k: v for k, v in options.items() if k != "vocab_size"})
    model.build()
    return model


def images(count: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (count, 16, 16, 3)).astype("uint8")


@pytest.mark.parametrize("decoder", ["attention", "show_tell"])
def test_greedy_equals_a_beam_of_one_token_for_token(decoder):
    keras.utils.set_random_seed(3)
    model = tiny_model(decoder=decoder, vocab_size=30)
    text = CaptionText("words", ["", "<unk>", "<start>", "<end>", *[f"w{i}" for i in range(26)]])
    greedy = Captioner(model, text, "greedy", max_length=9)
    beam = Captioner(model, text, "beam", beam_width=2, max_length=9)
    beam.beam_width = 1  # the beam search path with one hypothesis (a width of 1 means greedy)
    encoded = model.encode(images(5))
    greedy_ids, greedy_scores = greedy.search(encoded)
    beam_ids, beam_scores = beam.search(encoded)
    np.testing.assert_array_equal(beam_ids, greedy_ids)
    np.testing.assert_allclose(beam_scores, greedy_scores, rtol=1e-5, atol=1e-5)


def _brute_force_best(model, encoded_one, max_length: int, vocab: int):
    """The most probable caption of one image over every token sequence that ends at
    <end> or at `max_length` tokens."""
    memory, keys, states = model.start(encoded_one)
    cache = {}

    def log_probs(prefix):
        if prefix not in cache:
            step_states, token = states, BOS_ID
            for next_token in (BOS_ID, *prefix):
                logits, step_states, _ = model.step(tf.constant([next_token]), step_states, memory, keys)
                token = next_token
            del token
            cache[prefix] = np.asarray(tf.nn.log_softmax(logits))[0]
        return cache[prefix]

    best, best_score = None, -np.inf
    for length in range(1, max_length + 1):
        for sequence in itertools.product(range(vocab), repeat=length):
            if EOS_ID in sequence[:-1] or (length < max_length and sequence[-1] != EOS_ID):
                continue
            score = sum(log_probs(sequence[:i])[token] for i, token in enumerate(sequence))
            if score > best_score:
                best, best_score = sequence, score
    return best, best_score


@pytest.mark.parametrize("decoder", ["attention", "show_tell"])
def test_a_large_beam_returns_the_brute_force_best_caption(decoder):
    keras.utils.set_random_seed(11)
    model = tiny_model(decoder=decoder)
    vocab, max_length = 6, 3
    beam = Captioner(model, WORDS, "beam", beam_width=vocab ** (max_length - 1), max_length=max_length)
    encoded = model.encode(images(2, seed=4))
    ids, log_probs = beam.search(encoded)
    for row in range(2):
        best, score = _brute_force_best(model, encoded[row : row + 1], max_length, vocab)
        assert tuple(ids.numpy()[row][: len(best)]) == best
        assert float(log_probs[row]) == pytest.approx(score, abs=1e-4)


def test_attention_sums_to_one_over_the_grid():
    model = tiny_model(image_size=32)
    encoded = model.encode(images(2).repeat(2, 1).repeat(2, 2))
    memory, keys, states = model.start(encoded)
    _, _, alignments = model.step(tf.constant([BOS_ID, BOS_ID]), states, memory, keys)
    assert alignments.shape == (2, model.grid_cells) and model.grid_cells == 4
    np.testing.assert_allclose(np.sum(alignments, -1), 1.0, rtol=1e-5)
    rows = alignments_of(model, np.asarray(encoded[0]), np.array([4, 5, EOS_ID]))
    assert rows.shape == (3, 4)
    np.testing.assert_allclose(rows.sum(-1), 1.0, rtol=1e-5)
    assert np.all(rows >= 0)


def test_doubly_stochastic_penalty_matches_numpy():
    model = tiny_model(attention_regularization=0.7)
    pixels = images(2)
    caption_in = np.array([[BOS_ID, 4, 5, 4], [BOS_ID, 5, 0, 0]], np.int32)
    model({"image": pixels, "caption_in": caption_in}, training=True)
    (penalty,) = model.losses
    encoded = model.encode(pixels)
    expected, tokens = 0.0, 0
    for row in range(2):
        length = int(np.sum(caption_in[row] != 0))
        alignments = alignments_of(model, np.asarray(encoded[row]), caption_in[row][1:length].tolist() + [EOS_ID])
        expected += np.sum((1.0 - alignments.sum(0)) ** 2)
        tokens += length
    assert float(penalty) == pytest.approx(0.7 * expected / tokens, rel=1e-4)


@pytest.mark.parametrize(
    "decoder,injection,cell",
    [("attention", "init_state", "gru"), ("show_tell", "init_state", "cifg"),
     ("show_tell", "first_input", "mut1"), ("attention", "init_state", "layer_norm_lstm")],
)  # fmt: skip
def test_decoders_and_cells_run_and_round_trip(decoder, injection, cell, tmp_path):
    import layers

    model = tiny_model(decoder=decoder, image_injection=injection, cell=cell,
                       scheduled_sampling_type="constant", scheduled_sampling_k=0.5)
    inputs = {"image": images(2), "caption_in": np.array([[BOS_ID, 4, 5], [BOS_ID, 4, 0]], np.int32)}
    logits = model(inputs)
    assert logits.shape == (2, 3, 6)
    model(inputs, training=True)  # scheduled sampling: feeds its own predictions
    model.save(tmp_path / "model.keras")
    layers.register_all()
    restored = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_allclose(restored(inputs), logits, atol=1e-5)


def test_caption_text_words_and_graph_detokenizer(tmp_path):
    ids = tf.constant([[4, 1, 5, EOS_ID, 4, 0], [5, EOS_ID, 0, 0, 0, 0], [4, 4, 4, 4, 4, 4]])
    texts = [t.decode() for t in WORDS.graph_detokenizer()(ids).numpy()]
    assert texts == ["red <unk> circle", "circle", "red red red red red red"]
    assert WORDS.decode([4, 5, EOS_ID, 4]) == "red circle"
    np.testing.assert_array_equal(WORDS.encode("A Red, red circle!", 3), [1, 4, 4])  # "a": unknown
    assert WORDS.pieces([4, EOS_ID, 0]) == ["red", "<end>"]


def test_sentencepiece_captions_round_trip(tmp_path):
    from apps.captioning.config import CaptioningConfig

    captions = [f"a {colour} {shape} on the {side}" for colour in ("red", "blue", "green")
                for shape in ("circle", "square") for side in ("left", "right")] * 5
    config = CaptioningConfig(tokenizer="sentencepiece", vocab_size=40)
    text = CaptionText.build(config, captions, tmp_path)
    assert CaptionText.load("sentencepiece", tmp_path).model_proto == text.model_proto
    encoded = text.encode("A red circle on the left .", 30)
    row = tf.constant([list(encoded) + [EOS_ID, 7]])
    assert text.graph_detokenizer()(row).numpy()[0].decode() == "a red circle on the left"
    assert text.decode(list(encoded)) == "a red circle on the left"


def test_every_encoder_name_is_a_keras_application():
    import keras

    for name in ENCODERS[1:]:
        assert hasattr(keras.applications, name), name
        module = getattr(keras.applications, encoders.PREPROCESSING_MODULES[name])
        assert hasattr(module, "preprocess_input"), name


@pytest.mark.slow
@pytest.mark.parametrize("name", ["VGG16", "ResNet50", "MobileNetV3Small", "EfficientNetB0"])
def test_backbones_give_a_grid_and_the_last_hidden_vector(name):
    encoder = encoders.build_encoder(name, 32 if name != "VGG16" else 48)
    grid, vector = encoder(np.zeros((1, *encoder.input_shape[1:]), np.uint8))
    assert grid.shape.rank == 4 and vector.shape.rank == 2
    if name == "VGG16":
        assert vector.shape[-1] == 4096  # fc2: the classifier's last hidden layer
    else:
        assert vector.shape[-1] == grid.shape[-1]  # the global average of the grid


def test_encoder_weights_fail_fast_and_load_from_a_file(monkeypatch, tmp_path):
    monkeypatch.setattr(encoders, "network_available", lambda: False)
    with pytest.raises(RuntimeError, match="cannot be reached.*--encoder-weights PATH"):
        encoders.build_encoder("ResNet50", 32, weights="imagenet")
    with pytest.raises(FileNotFoundError, match=r"nowhere\.h5: no such weights file"):
        encoders.build_encoder("ResNet50", 32, weights=str(tmp_path / "nowhere.h5"))
    keras.utils.set_random_seed(1)
    first = encoders.build_encoder("small_cnn", 16, 4)
    path = tmp_path / "cnn.weights.h5"
    first.save_weights(path)
    keras.utils.set_random_seed(2)
    loaded = encoders.build_encoder("small_cnn", 16, 4, weights=str(path))
    pixels = images(2)
    np.testing.assert_allclose(loaded(pixels)[0], first(pixels)[0], atol=1e-6)


def test_sampling_at_temperature_zero_is_greedy_and_seeded_draws_repeat():
    keras.utils.set_random_seed(5)
    model = tiny_model(vocab_size=30)
    text = CaptionText("words", ["", "<unk>", "<start>", "<end>", *[f"w{i}" for i in range(26)]])
    encoded = model.encode(images(4))
    greedy_ids, _ = Captioner(model, text, "greedy", max_length=8).search(encoded)
    cold_ids, _ = Captioner(model, text, "sample", temperature=0.0, max_length=8).search(encoded)
    np.testing.assert_array_equal(cold_ids, greedy_ids)
    hot = Captioner(model, text, "sample", temperature=5.0, max_length=8, seed=3)
    first, first_scores = hot.search(encoded)
    again, _ = hot.search(encoded)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, greedy_ids)  # a hot softmax leaves the greedy path
    assert np.all(np.asarray(first_scores) <= 0)


@pytest.mark.parametrize(("decoder", "decoding"), [("attention", "beam"), ("show_tell", "greedy")])
def test_the_xla_serving_lever_captions_as_the_plain_signature(decoder, decoding):
    """`caption` with the XLA lever (one program per bucket of batch sizes, the batch
    padded with copies of its first image) gives the plain signature's captions, in
    order, for batches of 0, 1, 3 and 5 images, one of them undecodable."""
    keras.utils.set_random_seed(4)
    model = tiny_model(decoder=decoder, vocab_size=30)
    text = CaptionText("words", ["", "<unk>", "<start>", "<end>", *[f"w{i}" for i in range(26)]])
    plain = Captioner(model, text, decoding, beam_width=3, max_length=7)
    fast = Captioner(model, text, decoding, beam_width=3, max_length=7, options=ServingOptions())
    assert fast.xla and not plain.xla
    encoded = [tf.io.encode_png(image).numpy() for image in images(5, seed=1)]
    encoded[3] = b"not an image"
    for count in (0, 1, 3, 5):
        batch = tf.constant(encoded[:count], tf.string, shape=[count])
        expected, got = plain.caption(batch), fast.caption(batch)
        assert got["captions"].numpy().tolist() == expected["captions"].numpy().tolist()
        assert got["valid"].numpy().tolist() == expected["valid"].numpy().tolist()
        np.testing.assert_allclose(got["log_probs"], expected["log_probs"], rtol=1e-4, atol=1e-4)
    assert len(set(plain.caption(tf.constant(encoded))["captions"].numpy().tolist())) > 1
    sampler = Captioner(model, text, "sample", options=ServingOptions())
    assert not sampler.xla  # sampling keeps its random draws outside XLA


@pytest.mark.parametrize("injection", ["init_state", "first_input"])
def test_show_tell_initial_states_follow_the_image_at_any_feature_scale(injection):
    """Pooled ReLU features are tens in size: the Show-and-Tell decoder's initial states
    must still differ from image to image, not saturate to one state for all (before the
    image vector was normalised, tanh(Dense(vector)) was +-1 for every image and the
    decoder learnt only the caption prior)."""
    keras.utils.set_random_seed(5)
    model = tiny_model(decoder="show_tell", image_injection=injection, units=32)
    vectors = np.abs(np.random.default_rng(2).normal(size=(16, model.vector_features))).astype("float32")
    for scale in (1.0, 50.0):
        _, _, states = model.start(vectors * scale)
        for state in states:
            state = np.asarray(state)
            assert state.std(axis=0).mean() > 0.05, scale
            assert (np.abs(state) > 0.99).mean() < 0.5, scale
