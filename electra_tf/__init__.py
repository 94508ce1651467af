"""electra-tf: ELECTRA pre-training in Keras 3 / TensorFlow."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# TF turns its oneDNN kernels on by default only on CPUs with AVX-512 VNNI/BF16 or AMX.
# Elsewhere (AVX2 machines such as AMD Zen 3) it falls back to Eigen kernels, which ran
# the demo 2.5x slower with most of the time spent in page faults (bench/RESULTS.md).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from electra_tf.config import ElectraConfig  # noqa: E402
from electra_tf.embeddings import ElectraEmbeddings  # noqa: E402
from electra_tf.encoder import ElectraEncoder  # noqa: E402
from electra_tf.heads import DiscriminatorHead, GeneratorHead  # noqa: E402
from electra_tf.models import ElectraDiscriminator, ElectraGenerator  # noqa: E402
from electra_tf.optimization import (  # noqa: E402
    ElectraAdamW, OptimizerConfig, WarmupPolynomialDecay, create_optimizer)
from electra_tf.pretrainer import ElectraPretrainer  # noqa: E402
from electra_tf.vocab import special_token_ids  # noqa: E402

__all__ = [
    "ElectraConfig", "ElectraEmbeddings", "ElectraEncoder", "DiscriminatorHead", "GeneratorHead",
    "ElectraDiscriminator", "ElectraGenerator", "ElectraAdamW", "OptimizerConfig",
    "WarmupPolynomialDecay", "create_optimizer", "ElectraPretrainer", "special_token_ids",
]
