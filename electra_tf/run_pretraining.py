r"""Pre-trains ELECTRA (or the MLM baseline) from TFRecords made by build_pretraining_dataset.

    python -m electra_tf.run_pretraining --config=small --data_dir=data/wiki --model_dir=runs/small

`--config=NAME` takes a recipe shipped with the package (electra_tf/configs:
small, base, large, quick, demo, ...) from any working directory; flags after
it override it.

Re-running with the same --model_dir resumes from its latest checkpoint that
can be read, after clearing what an interrupted run left. SIGTERM/SIGINT
exit 0: at once before training, after the current step (with a
checkpoint) during it, and without touching the previous export during the
final export. At the end the discriminator is exported to
<model_dir>/export/discriminator (for the masked-LM objectives, mlm and
replace_mlm, and for teams and mc_bert, the main model's encoder to
<model_dir>/export/encoder).
"""

if __name__ == "__main__":
    # Before the other imports: a preemption during start-up then exits 0 with a message, not 143.
    from electra_tf.utils import stop_signals

    stop_signals.install()

import os  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402

from absl import app, flags  # noqa: E402

from electra_tf import configs  # noqa: E402
from electra_tf.training import run_flags  # noqa: E402
from electra_tf.utils import cli, stop_signals  # noqa: E402
from electra_tf.utils.errors import EXIT_DATA, UserError  # noqa: E402

FLAGS = flags.FLAGS
run_flags.define_flags()


def main(argv):
    del argv
    stop = stop_signals.install()
    settings = run_flags.settings_from_flags()
    cli.start_tensorflow()
    import tensorflow as tf

    from electra_tf.serving.savedmodel import export_pretrainer
    from electra_tf.training import run_state, training_loop
    from electra_tf.training.strategies import make_strategy

    try:
        strategy = make_strategy(FLAGS.distribution_strategy, FLAGS.tpu, FLAGS.num_cpu_devices)
        stop.reinstall()
        options = training_loop.LoopOptions(
            train_batch_size=FLAGS.train_batch_size, steps_per_loop=FLAGS.steps_per_loop,
            save_checkpoints_steps=FLAGS.save_checkpoints_steps, keep_checkpoint_max=FLAGS.keep_checkpoint_max,
            log_every_steps=FLAGS.log_every_steps, example_every_steps=FLAGS.example_every_steps,
            shuffle_buffer=FLAGS.shuffle_buffer, gradient_accumulation_steps=FLAGS.gradient_accumulation_steps,
            jit_compile=FLAGS.jit_compile, rematerialize=FLAGS.rematerialize,
            allow_changed_settings=FLAGS.allow_changed_settings,
            precision_policy=run_flags.PRECISIONS[FLAGS.mixed_precision])
        loop = training_loop.PretrainingLoop(settings, options, strategy)
    except UserError:
        raise
    except (ValueError, FileNotFoundError, tf.errors.OpError) as e:
        raise UserError(str(e).strip().splitlines()[0]) from None
    try:
        ended = loop.run(stop)
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
        corrupt = re.search(r"corrupt or truncated TFRecord file\]\s*\[([^\]]+)\]", e.message)
        if not corrupt:
            raise
        raise UserError(f"corrupt or truncated TFRecord file {corrupt.group(1)}; rebuild the data with "
                        "build_pretraining_dataset and re-run to resume (checkpoints so far are intact)",
                        EXIT_DATA) from None
    if ended != "done":
        # Stopped by a signal, with the checkpoint written: exit now. Tearing down TensorFlow and the
        # input pipeline took 13-30 s more for ELECTRA-Small (bench/RESULTS.md), past many grace periods.
        loop.writer.flush()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    print(f"trained to step {loop.step}; TensorBoard logs: tensorboard --logdir {settings.model_dir}", flush=True)
    if not (FLAGS.export_at_end and training_loop.is_chief(strategy)):
        return
    export_root = os.path.join(settings.model_dir, "export")
    try:
        with stop.mode(stop_signals.RAISE):
            state = run_state.load(settings.model_dir)
            path = export_pretrainer(loop.model, state.vocab_file, export_root, state.lowercase,
                                     FLAGS.export_generator, loop.record, settings.model_dir)
    except (stop_signals.Stopped, Exception):
        # Stopped, or what it became on its way out through TensorFlow.
        if not stop.received:
            raise
        print(f"stopped by {stop.received} during the export; {export_root} holds whole exports only (the previous "
              f"ones, unless this one had finished) and the checkpoint at step {loop.step} is saved. Re-run the same "
              "command to export.", flush=True)
        return
    if stop.received:  # it came while TensorFlow ran to the end of the export, which is whole
        print(f"stopped by {stop.received} as the export finished; {path} is the new export, whole, and the "
              f"checkpoint at step {loop.step} is saved", flush=True)
        return
    print(f"exported the {os.path.basename(path)} to {path}", flush=True)


if __name__ == "__main__":
    app.run(cli.run(main), argv=cli.argv_or_exit(configs.expand_argv))
