import functools

import pytest

from electra_tf import ElectraConfig, ElectraPretrainer


@functools.cache
def _pretrainer(size):
    # Building "large" takes seconds; build each size once per session.
    return ElectraPretrainer(ElectraConfig.for_size(size))


def _params(layer):
    return sum(int(v.numpy().size) for v in layer.trainable_variables)


@pytest.mark.parametrize("size,expected,tolerance", [
    ("small", 13.5e6, 0.01), ("base", 110e6, 0.01), ("large", 335e6, 0.01)])
def test_discriminator_parameter_count_matches_paper(size, expected, tolerance):
    discriminator = _pretrainer(size).discriminator
    assert abs(_params(discriminator) - expected) / expected < tolerance


@pytest.mark.parametrize("size", ["small", "base", "large"])
def test_generator_follows_fraction_at_same_depth(size):
    config = ElectraConfig.for_size(size)
    pretrainer = _pretrainer(size)
    gen, disc = pretrainer.generator.encoder, pretrainer.discriminator.encoder
    fraction = config.generator_hidden_size
    assert gen.hidden_size == round(disc.hidden_size * fraction)
    assert gen.intermediate_size == round(disc.intermediate_size * fraction)
    assert gen.num_heads == max(1, round(disc.num_heads * fraction))
    assert len(gen.blocks) == len(disc.blocks) == config.num_layers
    # The built weights have those sizes, not just the attributes.
    ffn = gen.blocks[0]._feedforward_intermediate_dense.kernel
    assert tuple(ffn.shape) == (gen.hidden_size, gen.intermediate_size)


def test_paper_values():
    small, base, large = (ElectraConfig.for_size(s) for s in ("small", "base", "large"))
    assert small.max_predictions_per_seq == 19
    assert (small.mask_prob, base.mask_prob, large.mask_prob) == (0.15, 0.15, 0.25)
    assert small.generator_dims == (64, 1, 256)
    assert base.generator_dims == (256, 4, 1024)
    assert large.generator_dims == (256, 4, 1024)
    assert (small.gen_weight, small.disc_weight, small.temperature) == (1.0, 50.0, 1.0)


def test_overrides_and_json_round_trip():
    config = ElectraConfig.for_size("small", mask_prob=0.25, vocab_size=8000)
    assert config.mask_prob == 0.25 and config.hidden_size == 256
    assert ElectraConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize("overrides,message", [
    (dict(objective="gpt"), "objective"),
    (dict(mask_prob=1.5), "mask_prob"),
    (dict(generator_hidden_size=2.0), "generator_hidden_size"),
    (dict(num_heads=3), "divisible"),
    (dict(max_seq_length=1024), "max_position_embeddings"),
    (dict(vocab_size=50), "mask_id"),
])
def test_invalid_configs_are_refused_with_the_reason(overrides, message):
    with pytest.raises(ValueError, match=message):
        ElectraConfig.for_size("small", **overrides)


def test_unknown_size_and_fields_are_refused():
    with pytest.raises(ValueError, match="unknown model size"):
        ElectraConfig.for_size("medium")
    with pytest.raises(ValueError, match="unknown ElectraConfig fields: hidden"):
        ElectraConfig.from_dict({"hidden": 3})


PRETRAINING_FLAGFILES = ("demo", "quick", "electra_small", "electra_base", "electra_large", "teams_small",
                         "mc_bert_base")


@pytest.mark.parametrize("name", PRETRAINING_FLAGFILES)
def test_shipped_flagfiles_give_valid_settings(name, tmp_path):
    """Every pre-training flagfile in electra_tf/configs/ parses and builds a config and optimizer that validate."""
    import os

    from conftest import ROOT

    from electra_tf import run_pretraining
    from electra_tf.text.vocab import RESERVED_TOKENS
    from electra_tf.training import run_flags

    words = [f"w{i}" for i in range(100)]
    (tmp_path / "vocab.txt").write_text("\n".join([*RESERVED_TOKENS, *words]) + "\n", encoding="utf-8")
    flags = run_pretraining.FLAGS
    flags.unparse_flags()
    try:
        flags(["run_pretraining", f"--flagfile={os.path.join(ROOT, 'electra_tf', 'configs', name + '.flags')}",
               f"--data_dir={tmp_path}", f"--model_dir={tmp_path / 'run'}"])
        settings = run_flags.settings_from_flags()
        objective, clip_norm = flags.objective, flags.clip_norm
    finally:
        flags.unparse_flags()
    assert settings.model.vocab_size == len(RESERVED_TOKENS) + len(words)
    assert settings.model.objective == (objective or "electra")
    if name == "mc_bert_base":  # the code's recipe: no clipping, Adam with bias correction
        assert clip_norm == 0 and settings.optimizer.bias_correction and settings.model.candidate_size == 10
