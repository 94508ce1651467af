"""electra-tf: ELECTRA pre-training in Keras 3 / TensorFlow."""

import importlib
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# TF turns its oneDNN kernels on by default only on CPUs with AVX-512 VNNI/BF16 or AMX.
# Elsewhere (AVX2 machines such as AMD Zen 3) it falls back to Eigen kernels, which ran
# the demo 2.5x slower with most of the time spent in page faults (bench/RESULTS.md).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

# The public API, imported on first use: importing a sub-package (the data tools import
# electra_tf.utils) must not load TensorFlow.
_EXPORTS = {
    "ElectraConfig": "electra_tf.modeling.config",
    "ElectraEmbeddings": "electra_tf.modeling.embeddings",
    "ElectraEncoder": "electra_tf.modeling.encoder",
    "DiscriminatorHead": "electra_tf.modeling.heads",
    "GeneratorHead": "electra_tf.modeling.heads",
    "ElectraDiscriminator": "electra_tf.modeling.models",
    "ElectraGenerator": "electra_tf.modeling.models",
    "ElectraAdamW": "electra_tf.training.optimization",
    "OptimizerConfig": "electra_tf.training.optimizer_config",
    "WarmupPolynomialDecay": "electra_tf.training.optimization",
    "create_optimizer": "electra_tf.training.optimization",
    "ElectraPretrainer": "electra_tf.pretraining.pretrainer",
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
