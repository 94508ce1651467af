"""Three training steps of a tiny ELECTRA under one strategy; writes losses and weights to an .npz.

    python tests/topology_run.py one_device|mirrored|multi_worker OUT.npz [accumulation_steps]

For multi_worker, TF_CONFIG describes the cluster. Every topology sees the
same global batch of 16 (each input pipeline takes its contiguous slice), so
the results must agree whatever the split.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

GLOBAL_BATCH = 16
STEPS = 3


def main(mode, out_path, accumulation=1):
    from electra_tf.training.strategies import make_strategy
    strategy = {"one_device": lambda: make_strategy("one_device"),
                "mirrored": lambda: make_strategy("mirrored", num_cpu_devices=2),
                "multi_worker": lambda: make_strategy("multi_worker_mirrored")}[mode]()

    from conftest import random_batch

    import electra_tf as et

    # With dropout: its masks are keyed by the example's place in the global batch, like masking and sampling.
    config = et.ElectraConfig.for_size("tiny", vocab_size=300, pad_id=0, unk_id=1, cls_id=2, sep_id=3, mask_id=4,
                                       hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    batches = [random_batch(config, GLOBAL_BATCH, seed=step) for step in range(STEPS)]
    with strategy.scope():
        keras.utils.set_random_seed(1)
        model = et.ElectraPretrainer(config)
        model.compile(optimizer=et.create_optimizer(
            et.OptimizerConfig(learning_rate=1e-3, num_train_steps=100, num_warmup_steps=2)))

    micro = GLOBAL_BATCH // accumulation

    def dataset_fn(context):
        # Pipeline p serves its replicas' contiguous slice of every micro-batch.
        per_pipeline = micro // context.num_input_pipelines
        lo = context.input_pipeline_id * per_pipeline
        slices = [{k: v[k0 * micro + lo: k0 * micro + lo + per_pipeline] for k, v in b.items()}
                  for b in batches for k0 in range(accumulation)]
        data = tf.data.Dataset.from_tensor_slices({k: np.stack([s[k] for s in slices]) for k in slices[0]})
        return data.unbatch().batch(context.get_per_replica_batch_size(micro))

    iterator = iter(strategy.distribute_datasets_from_function(dataset_fn))

    @tf.function
    def step(iterator):
        parts = [next(iterator) for _ in range(accumulation)]
        strategy.run(model.train_step, args=(parts if accumulation > 1 else parts[0],))

    losses = []
    for _ in range(STEPS):
        step(iterator)
        losses.append(float(model.get_metrics_result()["loss"]))
        model.reset_metrics()
    weights = {v.path: v.numpy() for v in model.trainable_variables}
    np.savez(out_path, losses=np.array(losses), **{f"w/{k}": v for k, v in weights.items()})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1)
