"""Runs a Model Garden step script under tf-keras' mixed_bfloat16 policy (the peer script has no precision flag).

    /tmp/peer-mg/bin/python bench/model_garden_mixed_precision.py PEER_SCRIPT [its arguments]

Sets the global tf-keras policy, then runs the script unchanged as __main__,
so every layer Model Garden builds computes in bfloat16 with float32
variables, as `--mixed_precision=bfloat16` does for ours. Model Garden's
ELECTRA fails under a mixed policy as it is (its `sample_from_softmax` adds
float32 Gumbel noise to the bfloat16 generator logits, and its task's losses
mix the bfloat16 logits with float32 labels), so two casts are added around
its functions, where ours computes in float32 too: the generator logits
before sampling, and the pretrainer's outputs (Keras' advice for mixed
precision: outputs in float32).
"""

import runpy
import sys

import tensorflow as tf
import tf_keras
from official.nlp.modeling.models import electra_pretrainer

_sample_from_softmax = electra_pretrainer.sample_from_softmax


_call = electra_pretrainer.ElectraPretrainer.call


def _sample_in_float32(logits, disallow=None):
    return _sample_from_softmax(tf.cast(logits, tf.float32), disallow)


def _call_with_float32_outputs(self, inputs):
    outputs = _call(self, inputs)
    return {k: tf.cast(v, tf.float32) if v.dtype == tf.bfloat16 else v for k, v in outputs.items()}


if __name__ == "__main__":
    tf_keras.mixed_precision.set_global_policy("mixed_bfloat16")
    electra_pretrainer.sample_from_softmax = _sample_in_float32
    electra_pretrainer.ElectraPretrainer.call = _call_with_float32_outputs
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    runpy.run_path(script, run_name="__main__")
