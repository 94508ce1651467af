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
from electra_tf.utils.errors import UserError

FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_string("model_dir", None, "A run's model_dir (holds run_config.json and checkpoints/).")
    flags.DEFINE_string("checkpoint", None, "Checkpoint prefix to export (default: the latest in model_dir).")
    flags.DEFINE_string("export_dir", None, "Where to write (default: <model_dir>/export).")
    flags.DEFINE_boolean("export_generator", False, "Also export the generator.")


def main(argv):
    del argv
    from electra_tf.serving.savedmodel import export_pretrainer
    from electra_tf.training import run_state

    if not FLAGS.model_dir:
        raise UserError("--model_dir is required")
    cli.start_tensorflow()
    try:
        state = run_state.load(FLAGS.model_dir)
        pretrainer = run_state.restore_pretrainer(state, FLAGS.checkpoint)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from None
    record = run_state.load_training_record(FLAGS.model_dir)
    if FLAGS.checkpoint and record and not FLAGS.checkpoint.endswith(f"ckpt-{record.get('step')}"):
        # The record is of the newest checkpoint; the card must not give this older one its figures.
        record = {"source": f"{FLAGS.checkpoint}, an earlier checkpoint of the run in {FLAGS.model_dir}"}
    path = export_pretrainer(pretrainer, state.vocab_file, FLAGS.export_dir or os.path.join(FLAGS.model_dir, "export"),
                             state.lowercase, FLAGS.export_generator, record, FLAGS.model_dir)
    print(f"exported the {os.path.basename(path)} to {path}")


if __name__ == "__main__":
    define_flags()
    app.run(cli.run(main))
