r"""Exporting the discriminator (the encoder, for mlm, replace_mlm, teams, mc_bert; optionally the generator).

    python -m electra_tf.export --model_dir=runs/demo [--checkpoint=runs/demo/checkpoints/ckpt-800]

writes `<model_dir>/export/discriminator/` (`.../encoder/` for the masked-LM
objectives, without rtd_probabilities) with two signatures:
`serving_default` (int32 input_ids, input_mask, segment_ids ->
sequence_output, pooled_output, rtd_probabilities) and `serve_text` (raw
strings -> tokens, rtd_probabilities, pooled_output, tokenized in the graph
with tf-text), plus `vocab.txt`, `electra_config.json` and a model card
(`README.md`, from the run's training_record.json) beside it. The
SavedModel loads with `tf.saved_model.load` (after `import tensorflow_text`)
in a process that does not import electra_tf.
"""

import os

from absl import app, flags

from electra_tf.utils import cli

FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_string("model_dir", None, "A run's model_dir (holds run_config.json and checkpoints/).")
    flags.DEFINE_string("checkpoint", None, "Checkpoint prefix to export (default: the latest in model_dir).")
    flags.DEFINE_string("export_dir", None, "Where to write (default: <model_dir>/export).")
    flags.DEFINE_boolean("export_generator", False, "Also export the generator.")


def main(argv):
    del argv
    from electra_tf.finetuning import sources

    cli.required_flags("model_dir")
    for path in (FLAGS.model_dir, FLAGS.checkpoint):
        if path:
            sources.locate(path)
    cli.start_tensorflow()  # before the imports below load TensorFlow, so that it starts quietly
    from electra_tf.serving.savedmodel import export_pretrainer
    from electra_tf.training import run_state

    # The checkpoint's own model_dir records its model.
    source = sources.resolve(FLAGS.checkpoint or FLAGS.model_dir, kinds=sources.RUN_KINDS)
    record = run_state.load_training_record(FLAGS.model_dir)
    if FLAGS.checkpoint and record and not FLAGS.checkpoint.endswith(f"ckpt-{record.get('step')}"):
        # The record is of the newest checkpoint; the card must not give this older one its figures.
        record = {"source": f"{FLAGS.checkpoint}, an earlier checkpoint of the run in {FLAGS.model_dir}"}
    path = export_pretrainer(source.restore_pretrainer(), source.vocab_file,
                             FLAGS.export_dir or os.path.join(FLAGS.model_dir, "export"), source.lowercase,
                             FLAGS.export_generator, record, FLAGS.model_dir)
    print(f"exported the {os.path.basename(path)} to {path}")


if __name__ == "__main__":
    define_flags()
    app.run(cli.run(main))
