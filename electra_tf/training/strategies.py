"""Building the tf.distribute strategy named by --distribution_strategy."""

import json
import os

import tensorflow as tf


def split_cpu(num_devices):
    """Expose the CPU as `num_devices` logical devices (must run before TF initialises devices)."""
    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * num_devices)


def cluster_resolver():
    """The multi-worker cluster: TF_CONFIG when set, else a SLURM allocation."""
    if os.environ.get("TF_CONFIG"):
        try:
            json.loads(os.environ["TF_CONFIG"])
        except ValueError as e:
            raise ValueError(f"TF_CONFIG is not valid JSON ({e}); see docs/distributed.md for its form") from None
        return tf.distribute.cluster_resolver.TFConfigClusterResolver()
    if os.environ.get("SLURM_JOB_ID"):
        return tf.distribute.cluster_resolver.SlurmClusterResolver()
    raise ValueError("multi_worker_mirrored needs a cluster: set TF_CONFIG (see docs/distributed.md) or run under "
                     "SLURM")


def make_strategy(name, tpu=None, num_cpu_devices=0):
    """`one_device`, `mirrored`, `multi_worker_mirrored` or `tpu`.

    `num_cpu_devices` > 0 splits the CPU into that many logical devices and
    mirrors over them: the way to test multi-replica training without GPUs.
    """
    if num_cpu_devices:
        split_cpu(num_cpu_devices)
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        devices = None
        if num_cpu_devices or not tf.config.list_logical_devices("GPU"):
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker_mirrored":
        return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=cluster_resolver())
    if name == "tpu":
        if not tpu:
            raise ValueError("the tpu strategy needs --tpu (a TPU name, a grpc:// address, or 'local')")
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"unknown distribution strategy {name!r}")
