"""electra-tf: ELECTRA pre-training in Keras 3 / TensorFlow."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

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
