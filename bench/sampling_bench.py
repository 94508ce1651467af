"""Gumbel-max vs inverse-CDF sampling of the generator: time per call, alone and inside an XLA cluster.

Both samplers run on float32 logits of the step's shape ([batch, masked
positions, vocabulary]: ELECTRA-Small's [32, 19, 30522] by default, the demo's
[64, 9, 7702] with `--demo`), each in its own tf.function, without and with
XLA for the whole function, alternating in rounds. (Their distributions are
checked by tests/test_sampling.py.)

    .venv/bin/python bench/sampling_bench.py
    .venv/bin/python bench/sampling_bench.py --demo
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from electra_tf.pretraining.sampling import gumbel_sample, inverse_cdf_sample  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--demo", action="store_true", help="the demo's shape [64, 9, 7702], temperature 2")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=5)
    args = parser.parse_args(argv)
    shape, temperature = ((64, 9, 7702), 2.0) if args.demo else ((32, 19, 30522), 1.0)
    logits = tf.constant(np.random.RandomState(0).normal(0, 3, shape).astype("float32"))
    index = tf.range(shape[0])
    fns = {}
    for name, sampler in (("gumbel", gumbel_sample), ("inverse_cdf", inverse_cdf_sample)):
        for xla in (False, True):
            fns[f"{name}{' +xla' if xla else ''}"] = tf.function(
                lambda step, f=sampler: f(logits, temperature, 0, step, index), jit_compile=xla)
    times = {name: [] for name in fns}
    for fn in fns.values():
        fn(tf.constant(0, tf.int64)).numpy()
    for r in range(args.rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            for c in range(args.calls):
                out = fn(tf.constant(r * args.calls + c, tf.int64))
            out.numpy()
            times[name].append((time.perf_counter() - start) / args.calls)
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    print(f"logits {list(shape)}, temperature {temperature}, {args.rounds} rounds x {args.calls} calls, load {load}:")
    for name, t in times.items():
        print(f"  {name:18s} median {statistics.median(t) * 1000:7.1f} ms  best {min(t) * 1000:7.1f} ms per call")


if __name__ == "__main__":
    main()
