r"""Pre-trains ELECTRA (or the MLM baseline) from TFRecords made by data_prep.

    python -m electra_tf.run_pretraining --flagfile=configs/electra_small.flags \
        --data_dir=data/wiki --model_dir=runs/small

Re-running with the same --model_dir resumes from its latest checkpoint.
SIGTERM/SIGINT write a checkpoint and exit. At the end the discriminator is
exported to <model_dir>/export/discriminator.
"""

import os
import re
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep the console for progress and errors

from absl import app, flags, logging  # noqa: E402

from electra_tf.training import run_flags  # noqa: E402

FLAGS = flags.FLAGS
run_flags.define_flags()


def _fail(message, code=1):
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def main(argv):
    logging.set_verbosity(logging.WARNING)
    if len(argv) > 1:
        _fail(f"unexpected arguments {' '.join(argv[1:])}; every setting is a --flag (see --helpfull)", 2)
    try:
        settings = run_flags.settings_from_flags()
    except run_flags.FlagError as e:
        _fail(str(e), 2)
    import tensorflow as tf

    from electra_tf.serving.savedmodel import export_pretrainer
    from electra_tf.training import run_state, training_loop
    from electra_tf.training.strategies import make_strategy

    try:
        strategy = make_strategy(FLAGS.distribution_strategy, FLAGS.tpu, FLAGS.num_cpu_devices)
        options = training_loop.LoopOptions(
            train_batch_size=FLAGS.train_batch_size, steps_per_loop=FLAGS.steps_per_loop,
            save_checkpoints_steps=FLAGS.save_checkpoints_steps, keep_checkpoint_max=FLAGS.keep_checkpoint_max,
            log_every_steps=FLAGS.log_every_steps, example_every_steps=FLAGS.example_every_steps,
            shuffle_buffer=FLAGS.shuffle_buffer, gradient_accumulation_steps=FLAGS.gradient_accumulation_steps,
            jit_compile=FLAGS.jit_compile,
            precision_policy=run_flags.PRECISIONS[FLAGS.mixed_precision],
            inject_nan_at_step=FLAGS.inject_nan_at_step)
        loop = training_loop.PretrainingLoop(settings, options, strategy)
    except (ValueError, FileNotFoundError, tf.errors.OpError) as e:
        _fail(str(e).strip().splitlines()[0], 2)
    try:
        ended = loop.run()
    except training_loop.NonFiniteLoss as e:
        _fail(str(e), training_loop.EXIT_NON_FINITE)
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
        corrupt = re.search(r"corrupt or truncated TFRecord file\]\s*\[([^\]]+)\]", e.message)
        if not corrupt:
            raise
        _fail(f"corrupt or truncated TFRecord file {corrupt.group(1)}; rebuild the data with "
              "data_prep.build_pretraining_dataset and re-run to resume (checkpoints so far are intact)", 1)
    if ended != "done":
        return
    print(f"trained to step {loop.step}; TensorBoard logs: tensorboard --logdir {settings.model_dir}", flush=True)
    if FLAGS.export_at_end and training_loop.is_chief(strategy) and settings.model.objective == "electra":
        state = run_state.load(settings.model_dir)
        path = export_pretrainer(loop.model, state.vocab_file, os.path.join(settings.model_dir, "export"),
                                 state.lowercase, FLAGS.export_generator)
        print(f"exported the discriminator to {path}", flush=True)


if __name__ == "__main__":
    app.run(main)
