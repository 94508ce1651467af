r"""Builds packed, sharded TFRecords for ELECTRA pre-training.

    python -m data_prep.build_pretraining_dataset \
        --input demo_out/corpus.txt --vocab_file demo_out/vocab.txt \
        --output_dir demo_out/pretrain_128 --num_processes 2

Writes pretrain_data.tfrecord-<i>-of-<n> shards (int64 input_ids, input_mask,
segment_ids, the original script's format) and dataset_info.json.
"""

import collections
import contextlib
import gc
import logging
import os
import shutil
import sys

from absl import app, flags

from data_prep import block_processing, input_files, sentences, shard_writer, text_input, workers
from electra_tf.data import format as data_format
from electra_tf.text.vocab import Vocab
from electra_tf.utils import cli
from electra_tf.utils.errors import UserError
from electra_tf.utils.progress import ProgressBar

FLAGS = flags.FLAGS


def define_flags():
    """Defined on demand, so several CLI modules can be imported together."""
    flags.DEFINE_list(
        "input", None, "Inputs: files, directories or globs, comma-separated. "
        "Text (blank lines separate documents), .jsonl (one document per record, "
        "see --text_field), either optionally compressed (.gz, .bz2, .xz, .zst), "
        "or .parquet (one document per row, column --text_field; needs pyarrow).")
    flags.DEFINE_string(
        "vocab_file", None, "WordPiece vocab.txt (BERT's or from build_vocab).")
    flags.DEFINE_string("output_dir", None, "Directory for shards.")
    flags.DEFINE_integer(
        "max_seq_length", 128, "Tokens per example, [CLS]/[SEP] included.")
    flags.DEFINE_integer(
        "num_out_files", 64, "Number of shards; examples go round-robin.")
    flags.DEFINE_integer(
        "num_processes", 1, "Worker processes for tokenizing and packing.")
    flags.DEFINE_integer(
        "seed", 0, "Seed for the packing draws; same seed + input = same bytes.")
    flags.DEFINE_boolean(
        "lowercase", True, "Lower-case and strip accents (BERT uncased).")
    flags.DEFINE_boolean(
        "overwrite", False, "Replace the shards of an existing --output_dir.")
    flags.DEFINE_boolean(
        "pack_across_documents", False, "Fill examples across document "
        "boundaries (joined by [SEP]) to cut padding; off = original recipe.")
    flags.DEFINE_enum(
        "sentence_splitting", "auto", list(sentences.MODES),
        "auto: split a line too long for one segment into sentences (and a "
        "sentence still too long at word boundaries), so every token can reach "
        "an example; always: split every line into sentences; never: the "
        "original's rule, a line is a sentence and the rest of a long one is lost.")
    flags.DEFINE_string(
        "sentence_language", "en", "Language code for the sentence splitter "
        "(sentencex: ISO 639 codes, ~250 languages).")
    flags.DEFINE_string(
        "text_field", "text", "Field (.jsonl) or column (.parquet) holding the text.")
    flags.DEFINE_boolean(
        "progress", True, "Show a progress bar on stderr when it is a terminal.")
    flags.DEFINE_enum(
        "runner", "local", ["local", "beam"], "local: this machine (--num_processes); "
        "beam: an Apache Beam pipeline (pip install 'electra-tf[beam]'), the same "
        "output format; inputs and --output_dir may be gs:// paths.")
    flags.DEFINE_string(
        "beam_runner", "DirectRunner", "With --runner=beam: Beam's runner "
        "(DirectRunner, DataflowRunner, FlinkRunner, SparkRunner, ...). Beam's "
        "own pipeline options go after a --.")


_MIN_SEQ_LENGTH = 8


def _check_flags():
    for name in ("input", "vocab_file", "output_dir"):
        if not flags.FLAGS[name].value:
            raise UserError(f"--{name} is required")
    if FLAGS.max_seq_length < _MIN_SEQ_LENGTH:
        raise UserError(f"--max_seq_length must be at least {_MIN_SEQ_LENGTH}")
    if FLAGS.num_out_files < 1 or FLAGS.num_processes < 1:
        raise UserError("--num_out_files and --num_processes must be positive")


def _check_output_dir(output_dir, overwrite):
    if "://" in output_dir:
        import tensorflow as tf  # pylint: disable=g-import-not-at-top

        if tf.io.gfile.isdir(output_dir) and tf.io.gfile.listdir(output_dir) and not overwrite:
            raise UserError(f"output directory {output_dir} exists and is not empty; "
                            "pass --overwrite or choose another --output_dir")
        return
    if os.path.isfile(output_dir):
        raise UserError(f"--output_dir {output_dir} is a file; give a directory")
    if os.path.isdir(output_dir) and os.listdir(output_dir) and not overwrite:
        raise UserError(f"output directory {output_dir} exists and is not empty; "
                        "pass --overwrite or choose another --output_dir")


def _remove(paths):
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def _previous_outputs(output_dir):
    info = os.path.join(output_dir, data_format.DATASET_INFO_FILE)
    return shard_writer.finished_shards(output_dir) + [info]


def build(config, inputs, output_dir, num_out_files, num_processes,
                    text_field="text", overwrite=False, show_progress=True):
    """Runs one build; returns the dataset_info dict."""
    vocab = Vocab(config.vocab_path)
    progress = ProgressBar(sum(f.size for f in inputs.usable), "MB", "MB/s", rate_per_unit=1e-6, count_scale=1e6,
                           stream=sys.stderr, tty_only=True, interval=0.25)
    progress.enabled &= show_progress
    created_dir = not os.path.isdir(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    writer = None
    try:
        # Workers first: they must not inherit open shard writers.
        with _frozen_heap(), workers.ordered_processing(
                config, num_processes) as process:
            if overwrite:
                _remove(shard_writer.unfinished_shards(output_dir))
            writer = shard_writer.ShardWriter(output_dir, num_out_files)
            stats, read_stats = _write_examples(
                process, config, inputs, text_field, writer, progress)
        if overwrite:
            _remove(_previous_outputs(output_dir))
        names = writer.commit()
    except BaseException:
        if writer is not None:
            writer.abort()
        if created_dir:
            shutil.rmtree(output_dir, ignore_errors=True)
        raise
    info = data_format.build_dataset_info(
        vocab=vocab, config=config, shard_names=names,
        shard_counts=writer.counts, stats=stats, read_stats=read_stats,
        inputs=inputs.usable, skipped_inputs=inputs.skipped,
        elapsed_seconds=progress.elapsed())
    data_format.write_dataset_info(output_dir, info)
    return info


@contextlib.contextmanager
def _frozen_heap():
    """Imports TF, then keeps the garbage collector off every object that
    exists (TF's modules: most of the heap) for the duration of a build.

    Collections along TF's import cost ~0.5 s of its ~2.5 s, and during a
    build each full collection walked all of TF's objects again (~5% of the
    CPU; packing allocates many small containers). Forked workers inherit
    the frozen heap, which also spares their copy-on-write pages.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        from electra_tf.text import tokenization  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
        gc.freeze()
    finally:
        if enabled:
            gc.enable()
    try:
        yield
    finally:
        gc.unfreeze()


def _progress_fields(stats):
    return [f"{stats['documents']:,} documents", f"{stats['examples']:,} examples"]


def _write_examples(process, config, inputs, text_field, writer, progress):
    """Reads, processes and writes every block; returns (stats, read_stats)."""
    read_stats = text_input.ReadStats()
    stats = collections.Counter()
    keep_tails = config.pack_across_documents or config.sentence_splitting != "never"
    documents = text_input.read_documents(
        inputs.usable, read_stats, text_field, keep_long_line_tail=keep_tails,
        count_tokens=None if keep_tails else _TokenCounter(config))
    for _, records, block_stats in process(
            block_processing.make_blocks(documents)):
        writer.write(records)
        stats.update(block_stats)
        progress.update(read_stats.raw_bytes_read, _progress_fields(stats))
    progress.update(read_stats.raw_bytes_read, _progress_fields(stats), force=True)
    progress.close()
    if not stats["examples"]:
        raise UserError("input is empty: every document was empty or "
                        "whitespace; check --input")
    return stats, read_stats


class _TokenCounter:
    """Counts the tokens of text the build leaves out, with a tokenizer made on first use (it is rarely needed)."""

    def __init__(self, config):
        self._config = config
        self._tokenizer = None

    def __call__(self, text):
        if self._tokenizer is None:
            from electra_tf.text import tokenization  # pylint: disable=g-import-not-at-top
            self._tokenizer = tokenization.WordpieceTokenizer(
                Vocab(self._config.vocab_path).tokens, lowercase=self._config.lowercase)
        return int(self._tokenizer.tokenize([text])[0].size)


DROPPED_WARNING_FRACTION = 0.05


def summary_line(info, output_dir):
    seconds = info["elapsed_seconds"]
    megabytes = info["input_bytes"] / 1e6
    skipped = len(info["skipped_inputs"])
    return (f"wrote {info['num_examples']:,} examples of {info['max_seq_length']}"
            f" tokens to {len(info['shards'])} shards in {output_dir}: "
            f"{info['documents']:,} documents, {megabytes:.1f} MB in "
            f"{seconds:.1f} s ({megabytes / max(seconds, 1e-9):.1f} MB/s), "
            f"{info['written_fraction']:.1%} of {info['tokens_read']:,} tokens written, "
            f"padding {info['padding_fraction']:.1%}, "
            f"[UNK] {info['unk_rate']:.3%}, {skipped} inputs skipped")


def warnings(info):
    """Lines to print after the summary: too many tokens dropped, files not read to the end."""
    lines = []
    dropped = dropped_warning(info)
    if dropped:
        lines.append(dropped)
    unreadable = info["dropped"]["unreadable_file_ends"]
    if unreadable:
        first = unreadable[0]
        lines.append(f"warning: {len(unreadable)} input file(s) could not be read to the end and only their "
                     f"readable start was used (first: {first['path']}: {first['reason']}); see "
                     "dataset_info.json, and replace the damaged files to use all of their text.")
    return lines


def dropped_warning(info):
    """A warning naming what to do when over 5% of the tokens read were dropped, else None."""
    read = info["tokens_read"]
    dropped = info["tokens_dropped"]
    total = sum(dropped.values())
    if not read or total <= DROPPED_WARNING_FRACTION * read:
        return None
    def share(count):
        return f"{count / read:.1%}" if count >= 0.001 * read else "<0.1%"

    causes, advice = [], []
    if dropped["long_line_tails"]:
        causes.append(f"{share(dropped['long_line_tails'])} the tails of lines longer than an example")
        advice.append("--sentence_splitting=auto (the default) splits such lines into sentences")
    if dropped["crossing_example_end"]:
        causes.append(f"{share(dropped['crossing_example_end'])} the parts of sentences that crossed "
                      "the end of an example (the original recipe's packing)")
        advice.append("--pack_across_documents carries them into the next example")
    return (f"warning: {total / read:.1%} of the {read:,} tokens read were dropped: "
            f"{'; '.join(causes)}. {'; '.join(advice)}.")


def _beam_pipeline():
    root = logging.getLogger()
    level = root.level
    if not cli.verbose():  # Beam warns at import that cloud clients it may never need are missing
        root.setLevel(logging.ERROR)
    try:
        from data_prep import beam_pipeline  # pylint: disable=g-import-not-at-top
    except ImportError as e:
        if not (e.name or "").startswith("apache_beam"):
            raise
        raise UserError("--runner=beam needs Apache Beam; install it with `pip install 'electra-tf[beam]'`") from None
    finally:
        root.setLevel(level)
    return beam_pipeline


def main(argv):
    beam_args = argv[1:]  # what followed a --
    _check_flags()
    if beam_args and FLAGS.runner != "beam":
        raise UserError(f"arguments after -- ({' '.join(beam_args)}) are Apache Beam's options; "
                        "pass --runner=beam or remove them")
    beam_pipeline = _beam_pipeline() if FLAGS.runner == "beam" else None
    if beam_pipeline is None and "://" in FLAGS.output_dir + "".join(FLAGS.input):
        raise UserError("gs:// and other remote paths need --runner=beam; copy the files here for a local build")
    local = [p for p in (*FLAGS.input, FLAGS.vocab_file, FLAGS.output_dir) if "://" not in p]
    if beam_pipeline is not None and FLAGS.beam_runner == "DataflowRunner" and local:
        raise UserError(f"Dataflow's workers cannot see local paths such as {local[0]}; "
                        "put --input, --vocab_file and --output_dir in gs://")
    Vocab(FLAGS.vocab_file)  # fail on a bad vocab before touching anything
    if beam_pipeline is not None:
        inputs = beam_pipeline.resolve_inputs(FLAGS.input, FLAGS.text_field)
    else:
        inputs = input_files.resolve_inputs(FLAGS.input, FLAGS.text_field)
    if "://" in FLAGS.output_dir:
        cli.start_tensorflow()  # TF's file systems see remote directories
    _check_output_dir(FLAGS.output_dir, FLAGS.overwrite)
    cli.start_tensorflow()
    for skipped in inputs.skipped:
        print(f"skipping {skipped['path']}: {skipped['reason']}")
    config = block_processing.PackingConfig(
        vocab_path=FLAGS.vocab_file, lowercase=FLAGS.lowercase,
        max_seq_length=FLAGS.max_seq_length,
        pack_across_documents=FLAGS.pack_across_documents, seed=FLAGS.seed,
        sentence_splitting=FLAGS.sentence_splitting,
        sentence_language=FLAGS.sentence_language)
    if beam_pipeline is not None:
        info = beam_pipeline.build(config, inputs, FLAGS.output_dir, FLAGS.num_out_files, FLAGS.text_field,
                                   FLAGS.overwrite, FLAGS.beam_runner, beam_args)
    else:
        info = build(config, inputs, FLAGS.output_dir, FLAGS.num_out_files,
                     FLAGS.num_processes, FLAGS.text_field, FLAGS.overwrite,
                     FLAGS.progress)
    print(summary_line(info, FLAGS.output_dir))
    for warning in warnings(info):
        print(warning, file=sys.stderr)


if __name__ == "__main__":
    define_flags()
    app.run(cli.run(main, pass_through=True))
