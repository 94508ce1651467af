r"""Builds the pre-training data with an Apache Beam pipeline: the local builder's format, on many machines.

    python -m data_prep.build_pretraining_dataset --runner=beam \
        --input 'gs://my-bucket/corpus/*.jsonl.zst' --vocab_file gs://my-bucket/vocab.txt \
        --output_dir gs://my-bucket/pretrain_128 --num_out_files 1024 \
        --beam_runner DataflowRunner -- --project my-project --region us-central1 \
        --temp_location gs://my-bucket/tmp --sdk_container_image ...

The same shards (`pretrain_data.tfrecord-<i>-of-<n>`, electra_tf.data.format)
and dataset_info.json as the local builder, made in five steps:

1. The launcher lists and checks the inputs (through Beam's file systems, so
   gs:// and the like work) and cuts them into tasks: a file, or a run of a
   Parquet file's row groups.
2. A worker reads, tokenizes and packs one task, block by block as the local
   builder does, with a random stream for each document derived from (seed,
   the document's name: the index of its file and its number or row there).
   Its examples are keyed (task, i).
3. Example (task, i) gets the global index offset(task) + i, the offsets
   being the sums of the example counts of the tasks before it, and goes to
   shard index % n: the local builder's round robin.
4. Each shard's examples, sorted by index, are written to a temporary file.
5. One last step renames the shards into place and writes dataset_info.json.

Nothing depends on how tasks are spread over workers or bundles, so a seed
gives the same bytes with any number of workers. The bytes differ from the
local builder's, whose random streams run over blocks of many documents;
the statistics agree (bench/RESULTS.md). A shard is sorted in one worker's
memory: keep shards under ~1 GB (--num_out_files about the output's GB).
"""

import collections
import concurrent.futures
import dataclasses
import os
import time

import apache_beam as beam
from apache_beam.io.filesystem import BeamIOError, CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from data_prep import block_processing, input_files, shard_writer, text_input
from electra_tf.data import format as data_format
from electra_tf.utils.errors import UserError

# A Parquet file's row groups go to tasks of about this many (compressed) bytes.
PARQUET_TASK_BYTES = 64 << 20
_SNIFF_THREADS = 16
EMPTY = "input is empty: every document was empty or whitespace; check --input"


class BeamInputFile(input_files.InputFile):
    """An input read through Beam's file systems (gs://, s3://, hdfs://, ...)."""

    def open_raw(self):
        return FileSystems.open(self.path, compression_type=CompressionTypes.UNCOMPRESSED)


def _remote(path):
    return "://" in path


def _match(spec):
    """The files a remote --input names: a file, a glob, or a directory (all files under it)."""
    patterns = [spec] if any(c in spec for c in "*?[") else [spec, spec.rstrip("/") + "/**"]
    for pattern in patterns:
        try:
            found = FileSystems.match([pattern])[0].metadata_list
        except (OSError, ValueError, BeamIOError):
            found = []
        files = sorted((m.path, m.size_in_bytes) for m in found
                       if not os.path.basename(m.path).startswith(".") and not m.path.endswith("/"))
        if files:
            return files
    raise UserError(f"no files match --input {spec}; check the path")


def resolve_inputs(specs, text_field):
    """Local and remote inputs, checked as the local builder checks them; remote ones read through Beam."""
    specs = [s for s in specs if s.strip()]
    local = [s for s in specs if not _remote(s)]
    resolved = (input_files.resolve_inputs(local, text_field) if local
                else input_files.ResolvedInputs([], []))
    remote = []
    for spec in (s for s in specs if _remote(s)):
        remote += [BeamInputFile(path, size) for path, size in _match(spec) if path not in {f.path for f in remote}]
    with concurrent.futures.ThreadPoolExecutor(_SNIFF_THREADS) as pool:
        reasons = list(pool.map(lambda f: input_files.sniff(f, text_field), remote))
    for input_file, reason in zip(remote, reasons):
        if reason:
            resolved.skipped.append({"path": input_file.path, "reason": reason})
        else:
            resolved.usable.append(input_file)
    if not resolved.usable:
        raise UserError("input is empty: no text files found; check --input")
    return resolved


def _parquet_parts(input_file):
    """A Parquet file's row groups in runs of about PARQUET_TASK_BYTES."""
    with input_file.open_raw() as raw:
        metadata = input_files.parquet_module().ParquetFile(raw).metadata
    parts, run, size = [], [], 0
    for group in range(metadata.num_row_groups):
        run.append(group)
        size += metadata.row_group(group).total_byte_size
        if size >= PARQUET_TASK_BYTES:
            parts.append(run)
            run, size = [], 0
    return parts + [run] if run else parts


def make_tasks(files):
    """(key, file, row groups or None) for each task; keys (file index, part) sort in input order."""
    tasks = []
    for file_index, input_file in enumerate(files):
        parts = _parquet_parts(input_file) if input_file.kind == "parquet" else [None]
        tasks += [((file_index, part), input_file, groups) for part, groups in enumerate(parts)]
    return tasks


class BuildTask(beam.DoFn):
    """Reads, tokenizes and packs one task; yields ((task key, i), record), then its statistics as "stats"."""

    def __init__(self, config, text_field):
        self._config = config
        self._text_field = text_field
        self._processor = None

    def setup(self):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        self._processor = block_processing.BlockProcessor(self._config)

    def _named_documents(self, key, input_file, groups, read_stats):
        """(name, document) pairs: a document's name is its file's index and its row (Parquet) or its number."""
        file_index = key[0]
        if input_file.kind == "parquet":
            for row, doc in text_input.parquet_documents(input_file, read_stats, self._text_field, groups,
                                                         with_rows=True):
                yield f"{file_index}/{row}", doc
            return
        keep_tails = self._config.pack_across_documents or self._config.sentence_splitting != "never"
        documents = text_input.read_documents(
            [input_file], read_stats, self._text_field, keep_long_line_tail=keep_tails,
            count_tokens=None if keep_tails else self._processor.count_tokens)
        for number, doc in enumerate(documents):
            yield f"{file_index}/{number}", doc

    def process(self, task):
        key, input_file, groups = task
        read_stats = text_input.ReadStats()
        stats = collections.Counter()
        names = []  # of the documents make_blocks has taken and not yet returned in a block

        def documents():
            for name, doc in self._named_documents(key, input_file, groups, read_stats):
                names.append(name)
                yield doc

        count = 0
        for index, block in block_processing.make_blocks(documents()):
            block_names, names[:] = names[:len(block)], names[len(block):]
            # Across documents, text flows from one document to the next within a block, so the
            # random stream is the block's (the block of this task), as in the local builder.
            _, records, block_stats = self._processor((f"{key[0]}.{key[1]}/{index}", block, block_names))
            stats.update(block_stats)
            for record in records:
                yield (key, count), record
                count += 1
        yield beam.pvalue.TaggedOutput("stats", (key, dict(stats), dataclasses.asdict(read_stats)))


def task_offsets(task_stats):
    """{task key: global index of its first example}, the tasks taken in key order."""
    offsets, total = {}, 0
    for key, stats, _ in sorted(task_stats, key=lambda item: item[0]):
        offsets[key] = total
        total += stats.get("examples", 0)
    return offsets


def _place(item, offsets, num_shards):
    (key, i), record = item
    index = offsets[key] + i
    return index % num_shards, (index, record)


def _temp_shard(output_dir, shard, num_shards):
    return os.path.join(output_dir, shard_writer.TEMP_PREFIX + data_format.shard_name(shard, num_shards))


class WriteShard(beam.DoFn):
    """Writes one shard's examples in index order to its temporary file; yields (shard, count)."""

    def __init__(self, output_dir, num_shards):
        self._output_dir = output_dir
        self._num_shards = num_shards

    def process(self, item):
        import tensorflow as tf  # pylint: disable=g-import-not-at-top

        shard, records = item
        records = sorted(records, key=lambda record: record[0])
        with tf.io.TFRecordWriter(_temp_shard(self._output_dir, shard, self._num_shards)) as writer:
            for _, record in records:
                writer.write(record)
        yield shard, len(records)


@dataclasses.dataclass(frozen=True)
class _Build:
    """What the last step needs to know about the build."""

    config: block_processing.PackingConfig
    output_dir: str
    num_shards: int
    inputs: list
    skipped: list
    overwrite: bool
    start_time: float
    runner: str


def _finish(shard_counts, task_stats, build):
    """Renames the shards into place and writes dataset_info.json; fails, writing nothing, if no example was made."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    from electra_tf.text.vocab import Vocab  # pylint: disable=g-import-not-at-top

    stats, read_stats = collections.Counter(), text_input.ReadStats()
    for _, task, read in sorted(task_stats, key=lambda item: item[0]):
        stats.update(task)
        read_stats.add(text_input.ReadStats(**read))
    temps = [_temp_shard(build.output_dir, i, build.num_shards) for i in range(build.num_shards)]
    if not stats["examples"]:
        raise ValueError(EMPTY)
    counts = dict(shard_counts)
    for i, temp in enumerate(temps):
        if i not in counts:  # fewer examples than shards: the local builder writes such shards empty too
            with tf.io.TFRecordWriter(temp):
                pass
    names = [data_format.shard_name(i, build.num_shards) for i in range(build.num_shards)]
    if build.overwrite:
        old = tf.io.gfile.glob(data_format.shard_pattern(build.output_dir))
        old.append(os.path.join(build.output_dir, data_format.DATASET_INFO_FILE))
        for path in old:
            if os.path.basename(path) not in names and tf.io.gfile.exists(path):
                tf.io.gfile.remove(path)
    for temp, name in zip(temps, names):
        tf.io.gfile.rename(temp, os.path.join(build.output_dir, name), overwrite=True)
    info = data_format.build_dataset_info(
        vocab=Vocab(build.config.vocab_path), config=build.config, shard_names=names,
        shard_counts=[counts.get(i, 0) for i in range(build.num_shards)], stats=stats, read_stats=read_stats,
        inputs=build.inputs, skipped_inputs=build.skipped, elapsed_seconds=time.time() - build.start_time,
        runner=build.runner)
    data_format.write_dataset_info(build.output_dir, info)


def build(config, inputs, output_dir, num_out_files, text_field="text", overwrite=False,
          beam_runner="DirectRunner", beam_args=()):
    """Runs the pipeline; returns the dataset_info dict it wrote.

    Args:
        config: a block_processing.PackingConfig.
        inputs: input_files.ResolvedInputs (from resolve_inputs here, for remote paths).
        output_dir: a local directory or a gs://... prefix.
        num_out_files: the number of shards.
        text_field: the .jsonl field or .parquet column holding the text.
        overwrite: replace the shards and dataset_info.json already in `output_dir`.
        beam_runner: Beam's runner: DirectRunner, DataflowRunner, FlinkRunner, SparkRunner, ...
        beam_args: more Beam pipeline options ("--project=...", "--direct_num_workers=2", ...).

    Example:

    >>> info = build(config, resolve_inputs(["corpus.txt"], "text"), "out", 4)  # doctest: +SKIP
    """
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    tf.io.gfile.makedirs(output_dir)
    if overwrite:
        for temp in tf.io.gfile.glob(os.path.join(output_dir, shard_writer.TEMP_PREFIX + "*")):
            tf.io.gfile.remove(temp)
    job = _Build(config, output_dir, num_out_files, inputs.usable, inputs.skipped,
                 overwrite, time.time(), f"beam:{beam_runner}")
    tasks = make_tasks(inputs.usable)
    options = PipelineOptions(["--runner", beam_runner, *beam_args])
    try:
        with beam.Pipeline(options=options) as pipeline:
            built = (pipeline
                     | "Tasks" >> beam.Create(tasks)
                     | "Spread" >> beam.Reshuffle()
                     | "Build" >> beam.ParDo(BuildTask(config, text_field)).with_outputs("stats", main="records"))
            task_stats = built.stats | "AllStats" >> beam.combiners.ToList()
            offsets = task_stats | "Offsets" >> beam.Map(task_offsets)
            shard_counts = (built.records
                            | "Place" >> beam.Map(_place, offsets=beam.pvalue.AsSingleton(offsets),
                                                  num_shards=num_out_files)
                            | "ByShard" >> beam.GroupByKey()
                            | "Write" >> beam.ParDo(WriteShard(output_dir, num_out_files))
                            | "AllShards" >> beam.combiners.ToList())
            _ = shard_counts | "Finish" >> beam.Map(_finish, task_stats=beam.pvalue.AsSingleton(task_stats),
                                                    build=job)
    except BaseException as e:
        if not _remote(output_dir):  # a remote job may still run (Ctrl-C does not cancel it); --overwrite cleans up
            for temp in tf.io.gfile.glob(os.path.join(output_dir, shard_writer.TEMP_PREFIX + "*")):
                tf.io.gfile.remove(temp)
        if EMPTY in str(e):  # raised by _finish, wrapped by the runner
            raise UserError(EMPTY) from None
        raise
    return data_format.read_dataset_info(output_dir)
