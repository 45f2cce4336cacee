import os

import keras
import numpy as np
import pytest
import sentencepiece as spm
import tensorflow as tf

from pipelines import tokenizers

WORDS = "the cat sat on a mat while dogs ran past green houses and tall trees".split()


def _corpus(count=400, seed=0):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(3, 12))) for _ in range(count)]


@pytest.fixture(scope="module")
def bpe_model():
    return tokenizers.train_sentencepiece(iter(_corpus()), vocab_size=60, model_type="bpe")


def test_train_from_iterator_without_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sentences = (s for s in _corpus())  # a generator: streamed, never written out
    model = tokenizers.train_sentencepiece(sentences, vocab_size=32, model_type="unigram")
    assert os.listdir(tmp_path) == []
    processor = tokenizers.sentencepiece_processor(model)
    assert processor.get_piece_size() == 32
    assert [processor.id_to_piece(i) for i in range(4)] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert processor.decode(processor.encode("the cat sat")) == "the cat sat"


def test_training_is_deterministic(bpe_model):
    again = tokenizers.train_sentencepiece(iter(_corpus()), vocab_size=60, model_type="bpe")
    assert again == bpe_model
    with pytest.raises(ValueError, match="model_type"):
        tokenizers.train_sentencepiece([], vocab_size=10, model_type="wordpiece")


def test_save_and_load_in_run_dir(tmp_path, bpe_model):
    path = tokenizers.save_sentencepiece(bpe_model, str(tmp_path / "run"))
    assert path.endswith(tokenizers.SENTENCEPIECE_FILE)
    assert tokenizers.load_sentencepiece(str(tmp_path / "run")) == bpe_model
    assert tokenizers.load_sentencepiece(path) == bpe_model
    with pytest.raises(FileNotFoundError, match="train_sentencepiece"):
        tokenizers.load_sentencepiece(str(tmp_path))


def test_in_graph_tokenizer_matches_python(bpe_model):
    processor = spm.SentencePieceProcessor(model_proto=bpe_model)
    texts = ["the cat sat on a mat", "tall trees", "dogs"]
    layer = tokenizers.SentencePieceTokenizer(bpe_model, add_bos=True, add_eos=True)
    ids = layer(tf.constant(texts)).numpy()
    for row, text in zip(ids, texts):
        expected = [tokenizers.BOS_ID] + processor.encode(text) + [tokenizers.EOS_ID]
        assert list(row[: len(expected)]) == expected
        assert np.all(row[len(expected) :] == tokenizers.PAD_ID)
    assert layer.detokenize(layer(tf.constant(texts))).numpy().tolist() == [
        t.encode() for t in texts
    ]
    fixed = tokenizers.SentencePieceTokenizer(bpe_model, sequence_length=3)(tf.constant(texts))
    assert fixed.shape == (3, 3)
    ragged = tokenizers.SentencePieceTokenizer(bpe_model, dense=False)(tf.constant(texts))
    assert isinstance(ragged, tf.RaggedTensor)
    mapped = tf.data.Dataset.from_tensor_slices(texts).batch(2).map(layer)
    assert [b.shape[0] for b in mapped] == [2, 1]


def test_keras_and_saved_model_round_trips(tmp_path, bpe_model):
    inputs = keras.Input(shape=(), dtype="string")
    outputs = tokenizers.SentencePieceTokenizer(bpe_model, sequence_length=6)(inputs)
    model = keras.Model(inputs, outputs)
    texts = tf.constant(["the cat sat", "green houses and tall trees"])
    model.save(tmp_path / "m.keras")
    restored = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(restored(texts), model(texts))

    class Export(tf.Module):
        def __init__(self, tokenizer):
            super().__init__()
            self.tokenizer = tokenizer

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def serve(self, strings):
            return self.tokenizer(strings)

    layer = tokenizers.SentencePieceTokenizer(bpe_model)
    tf.saved_model.save(Export(layer), str(tmp_path / "export"))
    loaded = tokenizers.load_saved_model(str(tmp_path / "export"))
    np.testing.assert_array_equal(loaded.serve(texts), layer(texts))


def test_a_saved_model_keeps_each_of_its_sentencepiece_models(tmp_path, bpe_model):
    """Two tokenizers of different models in one SavedModel (a translator's source and
    target sides): reloaded, each tokenises and detokenises with its own model."""
    other = tokenizers.train_sentencepiece(iter(_corpus(seed=1)), vocab_size=30, model_type="unigram")

    class Pair(tf.Module):
        def __init__(self):
            super().__init__()
            self.first = tokenizers.SentencePieceTokenizer(bpe_model)
            self.second = tokenizers.SentencePieceTokenizer(other)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string), tf.TensorSpec([None, None], tf.int32)])
        def serve(self, strings, ids):
            return {
                "first": self.first(strings), "second": self.second(strings),
                "first_text": self.first.detokenize(ids), "second_text": self.second.detokenize(ids),
            }  # fmt: skip

    texts, ids = tf.constant(["the cat sat on a mat", "tall trees"]), tf.constant([[9, 20, 25], [5, 6, 7]])
    pair = Pair()
    expected = pair.serve(texts, ids)
    assert expected["first_text"].numpy().tolist() != expected["second_text"].numpy().tolist()
    tf.saved_model.save(pair, str(tmp_path / "pair"))
    served = tokenizers.load_saved_model(str(tmp_path / "pair")).serve(texts, ids)
    for key, value in expected.items():
        np.testing.assert_array_equal(served[key], value, err_msg=key)


def test_word_vocabulary_order_and_limits():
    texts = ["The cat, the dog!", "the CAT<br />sat", "a dog"]
    vocabulary = tokenizers.build_word_vocabulary(texts)
    assert vocabulary[:3] == ["the", "cat", "dog"]  # 3, 2, 2 (ties alphabetical)
    assert set(vocabulary) == {"the", "cat", "dog", ",", "!", "sat", "a"}
    limited = tokenizers.build_word_vocabulary(
        tf.data.Dataset.from_tensor_slices(texts), max_tokens=3, reserved_tokens=("<s>",)
    )
    assert limited == ["<s>", "the", "cat"]
    assert tokenizers.build_word_vocabulary(texts, min_frequency=2) == ["the", "cat", "dog"]
    raw = tokenizers.build_word_vocabulary(texts, standardize=None, split_punctuation=False)
    assert "The" in raw and "cat," in raw


def test_word_tokenizer_uses_the_vocabulary(tmp_path):
    texts = ["the cat sat", "the dog sat down"]
    vocabulary = tokenizers.build_word_vocabulary(texts)
    path = tokenizers.save_vocabulary(vocabulary, str(tmp_path), "words.txt")
    layer = tokenizers.WordTokenizer(tokenizers.load_vocabulary(path), sequence_length=5)
    ids = layer(tf.constant(["The cat sat", "zebra"])).numpy()
    index = {token: i + 2 for i, token in enumerate(vocabulary)}  # 0 pad, 1 OOV
    assert ids.tolist() == [[index["the"], index["cat"], index["sat"], 0, 0], [1, 0, 0, 0, 0]]
    assert layer.vocabulary_size == len(vocabulary) + 2
    inverse = tokenizers.make_lookup(vocabulary, invert=True)
    assert inverse(tf.constant([index["dog"]])).numpy().tolist() == [b"dog"]
    inputs = keras.Input(shape=(), dtype="string")
    model = keras.Model(inputs, layer(inputs))
    model.save(tmp_path / "w.keras")
    restored = keras.models.load_model(tmp_path / "w.keras")
    np.testing.assert_array_equal(
        restored(tf.constant(["the dog"])), model(tf.constant(["the dog"]))
    )


def test_char_vocabulary_round_trip_with_special_characters(tmp_path):
    texts = ["ab\nc", "a\\b", "é a"]
    vocabulary = tokenizers.build_char_vocabulary(texts)
    assert vocabulary[0] == "a" and set(vocabulary) == {"a", "b", "c", "\n", "\\", "é", " "}
    path = tokenizers.save_vocabulary(vocabulary, str(tmp_path), "chars.txt")
    assert tokenizers.load_vocabulary(path) == vocabulary
    layer = tokenizers.WordTokenizer(vocabulary, level="char")
    ids = layer(tf.constant(["é\n"])).numpy()
    assert ids.tolist() == [[vocabulary.index("é") + 2, vocabulary.index("\n") + 2]]
    with pytest.raises(FileNotFoundError):
        tokenizers.load_vocabulary(str(tmp_path / "missing.txt"))


def test_scalar_inputs_pad_to_sequence_length(bpe_model):
    ids = tokenizers.SentencePieceTokenizer(bpe_model, sequence_length=12)(tf.constant("dogs"))
    assert ids.shape == (12,) and int(ids[-1]) == tokenizers.PAD_ID
    words = tokenizers.WordTokenizer(["dogs", "ran"], sequence_length=4)(tf.constant("dogs ran far"))
    assert words.numpy().tolist() == [2, 3, 1, 0]


@pytest.mark.parametrize("kind", ["vocabulary", "sentencepiece"])
def test_a_save_killed_while_writing_leaves_no_file(tmp_path, kind, bpe_model):
    """Vocabularies are written to a temporary file and renamed: a process killed (SIGKILL)
    in the middle of the write leaves no file that a resumed run would trust."""
    from benchmarks.reliability.common import run

    script = tmp_path / "save.py"
    (tmp_path / "model.bin").write_bytes(bpe_model)
    script.write_text(
        "import sys\nfrom pipelines import tokenizers\n"
        "if sys.argv[2] == 'vocabulary':\n"
        "    tokenizers.save_vocabulary(['a', 'b'] * 5000, sys.argv[1])\n"
        "else:\n"
        "    tokenizers.save_sentencepiece(open(sys.argv[3], 'rb').read(), sys.argv[1])\n"
    )
    folder = tmp_path / "vocab"
    killed = run(str(script), [str(folder), kind, str(tmp_path / "model.bin")], inject=([folder], 1, None))
    assert killed.killed, killed.stderr[-2000:]
    assert [path.name for path in folder.iterdir() if not path.name.startswith(".")] == []
