"""apps.common.precision (`--mixed-precision auto`) and loading a mixed-precision
checkpoint back in float32 (apps.common.checkpoints.load_model_file)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import layers
from apps.common.checkpoints import load_model_file
from apps.common.precision import (
    AUTO_PRECISION_VARIABLE,
    auto_policy,
    dtype_policy,
    resolve_precision,
)


@pytest.mark.parametrize(
    ("gpus", "flags", "policy"),
    [
        ([], {"avx2", "fma"}, "float32"),
        ([], {"avx2", "avx512f", "avx512_bf16"}, "mixed_bfloat16"),
        ([], {"amx_bf16", "amx_tile"}, "mixed_bfloat16"),
        ([(8, 0)], set(), "mixed_bfloat16"),
        ([(9, 0), (7, 5)], {"amx_bf16"}, "mixed_float16"),  # the weakest GPU decides
        ([(6, 1)], {"amx_bf16"}, "float32"),
    ],
)
def test_auto_picks_bfloat16_only_where_the_hardware_has_it(gpus, flags, policy):
    assert auto_policy(gpus, flags) == policy


def test_the_environment_decides_auto_and_a_bad_value_is_named(monkeypatch):
    monkeypatch.setenv(AUTO_PRECISION_VARIABLE, "mixed_bfloat16")
    assert resolve_precision("auto") == "mixed_bfloat16"
    assert resolve_precision("float32") == "float32"  # an explicit choice is kept
    with dtype_policy("auto") as policy:
        assert policy == keras.config.dtype_policy().name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "float32"
    monkeypatch.setenv(AUTO_PRECISION_VARIABLE, "bf16")
    with pytest.raises(ValueError, match=f"{AUTO_PRECISION_VARIABLE}='bf16'"):
        resolve_precision("auto")


def _model() -> keras.Model:
    tokens = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(20, 8)(tokens)
    x = layers.Recurrent(layers.build_cell("lstm", 6), return_sequences=True)(x)
    x = keras.layers.Dense(5)(x)
    return keras.Model(tokens, keras.layers.Activation("linear", dtype="float32")(x))


def test_a_mixed_checkpoint_loads_in_float32_equal_to_a_float32_build(tmp_path):
    keras.utils.set_random_seed(0)
    with dtype_policy("mixed_bfloat16"):
        mixed = _model()
    path = tmp_path / "mixed.keras"
    mixed.save(path)
    reference = _model()  # built in float32
    reference.set_weights(mixed.get_weights())
    tokens = np.random.default_rng(0).integers(0, 20, (3, 7)).astype("int32")
    expected = np.asarray(reference(tokens))

    loaded = load_model_file(path)
    assert {layer.dtype_policy.name for layer in loaded._flatten_layers(recursive=True)} == {"float32"}
    np.testing.assert_allclose(np.asarray(loaded(tokens)), expected, rtol=1e-6, atol=1e-6)
    assert keras.config.dtype_policy().name == "float32"

    as_saved = load_model_file(path, precision=None)
    assert "mixed_bfloat16" in {layer.dtype_policy.name for layer in as_saved.layers}
    bfloat16 = np.asarray(as_saved(tokens))
    assert bfloat16.dtype == np.float32 and not np.allclose(bfloat16, expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(bfloat16, expected, atol=0.05)
    assert load_model_file(path, precision="mixed_bfloat16").layers[2].dtype_policy.name == "mixed_bfloat16"
