"""Round-robin TFRecord shards that only get their final names when complete."""

import contextlib
import glob
import os

from electra_tf.data.format import SHARD_PREFIX, shard_name

TEMP_PREFIX = ".tmp-"


def finished_shards(output_dir):
    return sorted(glob.glob(os.path.join(output_dir, SHARD_PREFIX + "-*")))


def unfinished_shards(output_dir):
    """Temporary shards, e.g. left by a run that was killed."""
    return sorted(glob.glob(
        os.path.join(output_dir, TEMP_PREFIX + SHARD_PREFIX + "-*")))


class ShardWriter:
    """Writes record i to shard i % num_shards under a temporary name."""

    def __init__(self, output_dir, num_shards):
        self._final = [os.path.join(output_dir, shard_name(i, num_shards))
                       for i in range(num_shards)]
        self._temp = [os.path.join(output_dir, TEMP_PREFIX + os.path.basename(p))
                      for p in self._final]
        import tensorflow as tf  # pylint: disable=g-import-not-at-top
        self._writers = [tf.io.TFRecordWriter(p) for p in self._temp]
        self.counts = [0] * num_shards
        self._next = 0

    def write(self, records):
        n = len(self._writers)
        # Shard by shard rather than record by record: same files, fewer
        # Python steps per record.
        for offset in range(min(n, len(records))):
            shard = (self._next + offset) % n
            mine = records[offset::n]
            write = self._writers[shard].write
            for record in mine:
                write(record)
            self.counts[shard] += len(mine)
        self._next = (self._next + len(records)) % n

    def _close_writers(self):
        for writer in self._writers:
            writer.close()
        self._writers = []

    def commit(self):
        """Closes every shard and gives it its final name; returns the names."""
        self._close_writers()
        for temp, final in zip(self._temp, self._final):
            os.replace(temp, final)
        return [os.path.basename(p) for p in self._final]

    def abort(self):
        self._close_writers()
        for temp in self._temp:
            with contextlib.suppress(FileNotFoundError):
                os.remove(temp)
