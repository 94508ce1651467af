"""electra-tf: ELECTRA pre-training and fine-tuning in Keras 3 / TensorFlow."""

import importlib

# The public API, imported on first use: importing a sub-package (the command-line tools
# import electra_tf.utils) must not load TensorFlow, which the tools configure first
# (electra_tf.utils.cli). The library itself never changes the process environment.
_EXPORTS = {
    "ElectraConfig": "electra_tf.modeling.config",
    "ElectraEmbeddings": "electra_tf.modeling.embeddings",
    "GdesEmbeddings": "electra_tf.modeling.embeddings",
    "ElectraEncoder": "electra_tf.modeling.encoder",
    "KeyedDropout": "electra_tf.modeling.dropout",
    "DiscriminatorHead": "electra_tf.modeling.heads",
    "GeneratorHead": "electra_tf.modeling.heads",
    "ElectraDiscriminator": "electra_tf.modeling.models",
    "ElectraGenerator": "electra_tf.modeling.models",
    "ElectraAdamW": "electra_tf.training.optimization",
    "OptimizerConfig": "electra_tf.training.optimizer_config",
    "WarmupPolynomialDecay": "electra_tf.training.optimization",
    "create_optimizer": "electra_tf.training.optimization",
    "ElectraPretrainer": "electra_tf.pretraining.pretrainer",
    "ElectraClassifier": "electra_tf.finetuning.classifier",
    "ElectraTagger": "electra_tf.finetuning.tagging.tagger",
    "ElectraQuestionAnswerer": "electra_tf.finetuning.qa.answerer",
    "QAConfig": "electra_tf.finetuning.qa.config",
    "ElectraPreprocessor": "electra_tf.finetuning.preprocessing",
    "FinetuningConfig": "electra_tf.finetuning.config",
    "create_finetuning_optimizer": "electra_tf.finetuning.optimization",
    "special_token_ids": "electra_tf.text.vocab",
}
__all__ = list(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'electra_tf' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
