"""Translation ensembles: each step decodes the mean of the members' log-probabilities
(checked against a step-by-step greedy reference built from the members' own
`decode_step`); an ensemble of one translates exactly as its member; ensemble runs
evaluate, translate and export through the CLI; members must share vocabularies."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import tensorflow as tf

from apps.translation.__main__ import main
from apps.translation.config import TranslationConfig
from apps.translation.data import build_vocabularies, load_vocabularies
from apps.translation.inference import Translator
from apps.translation.model import AttentionSeq2Seq
from pipelines.tokenizers import BOS_ID, EOS_ID, PAD_ID
from tests.apps.test_translation import (  # noqa: F401  (fixtures)
    toy_pairs,
    toy_vocabularies,
    trained_run,
)

MAX_LENGTH = 7


def _model(vocabularies, seed: int, cell: str = "gru") -> AttentionSeq2Seq:
    tf.keras.utils.set_random_seed(seed)
    model = AttentionSeq2Seq(
        vocabularies.source_size, vocabularies.target_size, 8,
        encoder_units=8, decoder_units=12, decoder_cell=cell,
    )  # fmt: skip
    model.build()
    return model


def _reference_greedy(models, source_ids: np.ndarray) -> list[int]:
    """Greedy search of one sentence over the mean of the members' log-softmax, one
    `decode_step` of each member at a time."""
    starts = []
    for model in models:
        memory, mask, cell_states = model.encode(source_ids, training=False)
        states = model.initial_decoder_state(cell_states, memory)
        starts.append([memory, mask, states])
    token, output = BOS_ID, []
    for _ in range(MAX_LENGTH):
        log_probs = []
        for model, start in zip(models, starts):
            memory, mask, states = start
            logits, start[2], _ = model.decode_step(tf.constant([token]), states, memory, mask)
            log_probs.append(tf.nn.log_softmax(logits[0]).numpy())
        token = int(np.argmax(np.mean(log_probs, axis=0)))
        output.append(token)
        if token == EOS_ID:
            break
    return output


def test_ensemble_greedy_follows_the_mean_log_probabilities(toy_vocabularies):  # noqa: F811
    vocabularies, sources, _ = toy_vocabularies
    models = [_model(vocabularies, 1), _model(vocabularies, 2, "lstm"), _model(vocabularies, 3)]
    ensemble = Translator(models, vocabularies, beam_width=1, max_length=MAX_LENGTH)
    singles = [Translator(m, vocabularies, beam_width=1, max_length=MAX_LENGTH) for m in models]
    differs = 0
    for sentence in sources[:4]:
        source_ids = ensemble.tokenize(tf.constant([sentence]))
        got = ensemble.translate_ids(source_ids)["token_ids"].numpy()[0]
        got = [int(t) for t in got if t != PAD_ID]
        assert got == _reference_greedy(models, source_ids)
        alone = [[int(t) for t in s.translate_ids(source_ids)["token_ids"].numpy()[0] if t != PAD_ID] for s in singles]
        differs += any(path != got for path in alone)
    assert differs > 0  # the pool is not any one member's search


def test_ensemble_of_one_translates_as_its_member(toy_vocabularies):  # noqa: F811
    vocabularies, sources, _ = toy_vocabularies
    model = _model(vocabularies, 4)
    for beam_width in (1, 3):
        single = Translator(model, vocabularies, beam_width=beam_width, max_length=MAX_LENGTH)
        pooled = Translator([model], vocabularies, beam_width=beam_width, max_length=MAX_LENGTH)
        batch = tf.constant(sources[:6])
        expected, got = single.translate(batch), pooled.translate(batch)
        assert got["translations"].numpy().tolist() == expected["translations"].numpy().tolist()
        np.testing.assert_allclose(got["scores"].numpy(), expected["scores"].numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="at least one model"):
        Translator([], vocabularies)


@pytest.mark.slow
def test_ensemble_run_evaluates_translates_and_exports(trained_run, tmp_path):  # noqa: F811
    run_dir, flags, metrics = trained_run
    second = tmp_path / "second"
    from tests.apps.test_translation import TINY

    main(["train", "--run-dir", str(second), "--epochs", "3", "--seed", "7", *TINY, *flags])
    ensemble_dir = tmp_path / "ensemble"
    main(["ensemble", "--run-dir", str(ensemble_dir), "--members", str(run_dir), str(second)])
    evaluated = main(["evaluate", "--run-dir", str(ensemble_dir)])
    assert evaluated["valid_bleu_beam3"] > 40  # both members learnt the toy language
    assert evaluated["train_wall_time_s"] == pytest.approx(
        metrics["train_wall_time_s"] + main(["evaluate", "--run-dir", str(second)])["train_wall_time_s"], abs=0.2
    )
    translated = main(["translate", "--run-dir", str(ensemble_dir), "--input", str(flags[flags.index("--valid-source") + 1])])
    export_path = main(["export", "--run-dir", str(ensemble_dir)])
    served = tf.saved_model.load(str(export_path))
    sources = ["red house", "the big dog sees the cat"]
    out = served.signatures["serving_default"](sources=tf.constant(sources))
    direct = main(["translate", "--run-dir", str(ensemble_dir), "--input", str(_lines(tmp_path, sources))])
    assert [t.decode() for t in out["translations"].numpy()] == direct
    assert len(translated) == 60

    with pytest.raises(ValueError, match="is an ensemble"):
        main(["train", "--run-dir", str(ensemble_dir), *TINY, *flags])
    # A member with other SentencePiece models cannot join.
    other = tmp_path / "other"
    shutil.copytree(second, other)
    sources, targets = toy_pairs(200, seed=9)
    smaller = build_vocabularies(TranslationConfig(vocab_size=30), sources, targets, tmp_path / "v")
    assert smaller.target != load_vocabularies(second / "vocab").target
    shutil.copy(tmp_path / "v" / "target.model", other / "vocab" / "target.model")
    with pytest.raises(ValueError, match="members must share vocabularies"):
        main(["ensemble", "--run-dir", str(tmp_path / "bad"), "--members", str(run_dir), str(other)])


def _lines(folder, sentences):
    path = folder / "input.txt"
    path.write_text("".join(s + "\n" for s in sentences), encoding="utf-8")
    return path
