"""Fine-tunes the same classifier on one device and on two mirrored CPU replicas; prints the largest difference.

    python tests/finetune_replicas_run.py MODEL_DIR

Dropout is off, so both must make the same updates: the gradients are summed
over the replicas before the global-norm clipping (ElectraClassifier.train_step).
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from electra_tf.training.strategies import make_strategy, split_cpu  # noqa: E402


def main(model_dir):
    split_cpu(2)  # before TensorFlow sets up its devices
    from electra_tf.finetuning.classifier import ElectraClassifier
    from electra_tf.finetuning.optimization import create_finetuning_optimizer

    texts = ["a great film", "a dull film", "it was good", "it was boring"] * 2
    labels = np.array([0, 1, 0, 1] * 2)
    weights = {}
    for name in ("one_device", "mirrored"):
        strategy = make_strategy(name)
        keras.utils.set_random_seed(0)
        with strategy.scope():
            classifier = ElectraClassifier.from_pretrained(model_dir, num_classes=2, sequence_length=16,
                                                           hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
            initial = [v.numpy().copy() for v in classifier.weights]
            classifier.compile(optimizer=create_finetuning_optimizer(classifier, 10, learning_rate=2e-3))
        features = {k: v.numpy() for k, v in classifier.preprocessor(texts).items()}
        classifier.fit(tf.data.Dataset.from_tensor_slices((features, labels)).batch(8), epochs=3, verbose=0)
        weights[name] = [v.numpy() for v in classifier.weights]
    difference = max(float(np.abs(a - b).max()) for a, b in zip(weights["one_device"], weights["mirrored"]))
    moved = max(float(np.abs(a - b).max()) for a, b in zip(initial, weights["mirrored"]))
    print(json.dumps({"difference": difference, "moved": moved}))


if __name__ == "__main__":
    main(sys.argv[1])
