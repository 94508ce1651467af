"""Peak memory of training steps: one process per (model, batch, precision, rematerialize).

Builds the model as bench_train_step.py does, runs `--steps` train steps and
prints the process's peak resident memory (ru_maxrss) and the step times.
Run it once per batch size: the peak is per process.

    .venv/bin/python bench/memory_probe.py --size base --seq 512 --batch 4
    .venv/bin/python bench/memory_probe.py --size base --seq 512 --batch 4 --rematerialize
"""

import argparse
import os
import resource
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_train_step as bench  # noqa: E402  (a sibling script, not a package)


def peak_rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    bench.add_model_args(parser)
    parser.set_defaults(size="base", seq=512, batch=4)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--precision", default="float32", choices=bench.PRECISIONS)
    args = parser.parse_args(argv)
    config = bench.model_config(args)
    pretrainer = bench.build(config, args.precision, args.rematerialize)
    built = peak_rss_gb()
    batch = bench.make_batch(args.batch, config.max_seq_length, vocab_size=config.vocab_size)
    step = tf.function(pretrainer.train_step)
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step(batch)["loss"].numpy()
        times.append(time.perf_counter() - start)
    print(f"memory model={args.model_flags or args.size} batch={args.batch} seq={config.max_seq_length} "
          f"precision={args.precision} rematerialize={int(args.rematerialize)} params={pretrainer.count_params()} "
          f"rss_after_build_gb={built:.2f} peak_rss_gb={peak_rss_gb():.2f} "
          f"step_s={' '.join(f'{t:.1f}' for t in times)}", flush=True)


if __name__ == "__main__":
    main()
