r"""Fine-tunes a pre-trained discriminator: GLUE or your own labelled files, SQuAD, or token tagging.

    python -m electra_tf.run_finetuning --task=sst2 --data_dir=glue_data/SST-2 \
        --init_checkpoint=runs/small --output_dir=runs/small_sst2
    python -m electra_tf.run_finetuning --task=squad_v2 --data_dir=squad \
        --init_checkpoint=runs/small --output_dir=runs/small_squad2
    python -m electra_tf.run_finetuning --task=chunk --data_dir=conll2000 --dev_file=conll2000/test.txt \
        --init_checkpoint=runs/small --output_dir=runs/small_chunk
    python -m electra_tf.run_finetuning --data_dir=reviews --text_a_column=text --label_column=label \
        --init_checkpoint=runs/small --output_dir=runs/small_reviews --num_trials=5

Evaluates on the dev split after every epoch, keeps the best epoch's
weights, writes eval_results.json, the test predictions (GLUE's
submission format) and a SavedModel (output_dir/export) that takes raw
text, and ends with a summary of the selected epoch and these paths. The
recipe is the original's (google-research/electra run_finetuning.py); see
docs/finetuning/classification.md.

SIGTERM/SIGINT exit 0: at once before training, after the current update
(with the trial's training state saved) during it, and without touching
the previous export during the outputs. Re-running the same command
continues an unfinished run exactly where it stopped, trial by trial;
--overwrite starts over.
"""

if __name__ == "__main__":
    # Before the other imports: a stop signal during start-up then exits 0 with a message, not 143.
    from electra_tf.utils import stop_signals

    stop_signals.install()

import dataclasses  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

from absl import app, flags  # noqa: E402

from electra_tf import configs  # noqa: E402
from electra_tf.finetuning import config as finetuning_config  # noqa: E402
from electra_tf.finetuning import sources, tasks  # noqa: E402
from electra_tf.finetuning.qa import config as qa_config  # noqa: E402
from electra_tf.finetuning.tagging import conll  # noqa: E402
from electra_tf.modeling import config as config_lib  # noqa: E402
from electra_tf.training import run_flags  # noqa: E402
from electra_tf.utils import cli, stop_signals  # noqa: E402
from electra_tf.utils.errors import UserError  # noqa: E402

FLAGS = flags.FLAGS
FINETUNING_FIELDS = list(dataclasses.fields(finetuning_config.FinetuningConfig))
# The model flags that make sense without a checkpoint (a randomly initialised baseline); with one they
# may be given only to state what the checkpoint holds.
ARCHITECTURE_FIELDS = ("vocab_size", "embedding_size", "hidden_size", "num_layers", "num_heads", "intermediate_size",
                       "max_position_embeddings", "type_vocab_size", "initializer_range", "layer_norm_epsilon")
STRATEGIES = ("one_device", "mirrored", "tpu")
QA_FIELDS = list(dataclasses.fields(qa_config.QAConfig))
ALL_TASKS = tasks.TASKS + conll.TAGGING_TASKS + qa_config.QA_TASKS
# FinetuningConfig fields that choose the training data rather than how it is learnt.
DATA_FIELDS = ("double_unordered", "max_train_examples")


def define_flags():
    """Defines every flag of run_finetuning (idempotent per process), grouped by purpose for --helpfull."""
    if "task" in FLAGS:
        return
    with cli.flag_group("Data and task"):
        _define_data_flags()
    with cli.flag_group("Model"):
        _define_model_flags()
    with cli.flag_group("Recipe"):
        if "config" not in FLAGS:  # run_pretraining's flags, defined in the same process, have it already
            flags.DEFINE_string("config", None, "A recipe shipped with the package, by name (demo_finetune: make "
                                                "demo's). Flags after it override it; --flagfile=PATH takes your own. "
                                                "Default: none.")
        for field in FINETUNING_FIELDS:
            if field.name not in DATA_FIELDS:
                run_flags.define_field(field, field.default, finetuning_config.FIELD_HELP[field.name])
        for field in QA_FIELDS:
            run_flags.define_field(field, field.default, qa_config.FIELD_HELP[field.name])
    with cli.flag_group("Run and output"):
        _define_run_flags()


def _define_data_flags():
    flags.DEFINE_enum("task", "custom", ALL_TASKS, "A GLUE task (reads its TSV layout from --data_dir, the task's "
                                                   "directory of the GLUE download); custom: your own files; "
                                                   "squad_v1/squad_v2: SQuAD JSON; tagging: CoNLL-style files; "
                                                   "chunk: CoNLL-2000 chunking (tagging with the original's preset).")
    flags.DEFINE_string("data_dir", None, "GLUE: the task's directory (e.g. glue_data/SST-2). custom: a directory "
                                          "holding train, dev and optionally test files (.tsv, .csv or .jsonl). "
                                          "squad_v1/v2: the directory of train-v1.1.json and dev-v1.1.json (or "
                                          "-v2.0). tagging/chunk: the directory of train.txt, dev.txt, test.txt.")
    for split in ("train", "dev", "test"):
        flags.DEFINE_string(f"{split}_file", None, f"custom, squad, tagging: the {split} file (default: in "
                                                   "--data_dir, by the task's names).")
    flags.DEFINE_string("text_a_column", "text", "custom: the column (or JSON field) of the text.")
    flags.DEFINE_string("text_b_column", None, "custom: the column of the second text of a sentence-pair task.")
    flags.DEFINE_string("label_column", "label", "custom: the column of the label (class name or number).")
    flags.DEFINE_boolean("regression", False, "custom: the labels are numbers to predict (squared error), not classes.")
    flags.DEFINE_integer("tag_column", -1, "tagging/chunk: the column of the tag (0-based; negative counts from "
                                           "the end; the word is the first column).")
    for field in FINETUNING_FIELDS:
        if field.name in DATA_FIELDS:
            run_flags.define_field(field, field.default, finetuning_config.FIELD_HELP[field.name])


def _define_model_flags():
    flags.DEFINE_string("init_checkpoint", None, "The pre-trained model: a model_dir of run_pretraining or "
                                                 "convert_checkpoint, a checkpoint in one, its export/discriminator, "
                                                 "a Hugging Face ELECTRA or BERT directory (a task model comes with "
                                                 "its head: see --new_head), or a keras-hub preset "
                                                 "(a local directory: nothing is downloaded). "
                                                 "Without it the model is randomly initialised (see --model_size).")
    flags.DEFINE_boolean("new_head", False, "With --init_checkpoint a transformers task model (e.g. "
                                            "ElectraForSequenceClassification): fine-tune its encoder under a new "
                                            "head. Without it, its head is continued; it must fit the task (its "
                                            "labels or tags, the transformers or linear head).")
    flags.DEFINE_boolean("random_init", False, "Build the model --init_checkpoint describes (sizes, vocabulary) but "
                                               "keep its random initialisation: the baseline to compare with.")
    flags.DEFINE_enum("model_size", None, config_lib.SIZES, "Without --init_checkpoint: the paper size of the randomly "
                                                            "initialised model (default small); the flags below "
                                                            "override its values.")
    fields = {f.name: f for f in dataclasses.fields(config_lib.ElectraConfig)}
    for name in ARCHITECTURE_FIELDS:
        run_flags.define_field(fields[name], None, config_lib.FIELD_HELP[name] + " Default: the checkpoint's, or "
                                                                                 "--model_size's.")
    flags.DEFINE_string("vocab_file", None, "WordPiece vocab.txt; required without --init_checkpoint (with one, it "
                                            "must be the checkpoint's).")
    flags.DEFINE_boolean("lowercase", None, "Lower-case and strip accents (BERT uncased). Default: as the model was "
                                            "pre-trained (on without --init_checkpoint).")


def _define_run_flags():
    flags.DEFINE_string("output_dir", None, "Where checkpoints, TensorBoard logs, eval_results.json, test predictions "
                                            "and the export go. Re-running the same command continues an unfinished "
                                            "run there.")
    flags.DEFINE_boolean("overwrite", False, "Start over in --output_dir: replace a finished run (which is refused "
                                             "without it) or an unfinished one (which is otherwise continued).")
    flags.DEFINE_boolean("export", True, "Write the SavedModel of the best weights to <output_dir>/export.")
    flags.DEFINE_integer("log_every_steps", 50, "Write TensorBoard training scalars every this many updates.")
    flags.DEFINE_enum("mixed_precision", "none", list(run_flags.PRECISIONS), "Compute precision; variables stay "
                                                                            "float32.")
    flags.DEFINE_enum("distribution_strategy", "one_device", STRATEGIES + ("multi_worker_mirrored",),
                      "tf.distribute strategy (fine-tuning trains with Keras fit: not multi_worker_mirrored).")
    flags.DEFINE_string("tpu", None, "TPU name or grpc:// address for --distribution_strategy=tpu.")
    flags.DEFINE_integer("num_cpu_devices", 0, "Split the CPU into this many logical devices (tries mirrored "
                                               "training on a CPU machine); 0 = don't.")


def _split_files(find):
    """{split: path} from --<split>_file or `find(data_dir, split, required)`; test may be None."""
    files = {}
    for split, required in (("train", True), ("dev", True), ("test", False)):
        path = FLAGS[f"{split}_file"].value
        if path is None:
            if not FLAGS.data_dir and not required:
                files[split] = None
                continue
            if not FLAGS.data_dir:
                raise UserError(f"--task={FLAGS.task} needs --data_dir or --{split}_file")
            if not os.path.isdir(FLAGS.data_dir):
                raise UserError(f"--data_dir {FLAGS.data_dir} is not a directory")
            path = find(FLAGS.data_dir, split, required)
        elif not os.path.isfile(path):
            raise UserError(f"--{split}_file {path} does not exist")
        files[split] = path
    return files


def _read_task():
    """The task's examples, read and checked before TensorFlow starts."""
    if FLAGS.task in conll.TAGGING_TASKS:
        files = _split_files(conll.find_tagging_file)
        return conll.read_tagging(FLAGS.task, files["train"], files["dev"], files["test"], FLAGS.tag_column)
    if FLAGS.task in qa_config.QA_TASKS:
        from electra_tf.finetuning.qa import squad

        files = _split_files(lambda d, split, required: squad.find_squad_file(d, FLAGS.task, split, required))
        return squad.read_squad_task(FLAGS.task, files["train"], files["dev"], files["test"])
    if FLAGS.task != "custom":
        if not FLAGS.data_dir:
            raise UserError(f"--task={FLAGS.task} needs --data_dir, the task's directory of the GLUE download")
        for name in ("train_file", "dev_file", "test_file", "text_b_column"):
            if FLAGS[name].present:
                raise UserError(f"--{name} is for --task=custom; a GLUE task reads its standard files from --data_dir")
        if FLAGS.regression:
            raise UserError("--regression is for --task=custom (stsb is a regression already)")
        return tasks.read_glue(FLAGS.task, FLAGS.data_dir, FLAGS.double_unordered)
    files = _split_files(tasks.find_split_file)
    columns = tasks.CustomColumns(FLAGS.text_a_column, FLAGS.text_b_column, FLAGS.label_column)
    return tasks.read_custom(files["train"], files["dev"], files["test"], columns, FLAGS.regression)


def _continue_task_head(values, qa_values):
    """A transformers task model of the task continues with its head: its head option unless one is given."""
    if not FLAGS.init_checkpoint or FLAGS.new_head or FLAGS.random_init:
        return
    head = sources.task_head(FLAGS.init_checkpoint)  # config.json only: a missing path is reported here
    family = "tagging" if FLAGS.task in conll.TAGGING_TASKS else "qa" if FLAGS.task in qa_config.QA_TASKS else \
        "classification"
    if head is None or head.family != family:
        return
    if family == "classification" and not FLAGS["classifier_head"].present:
        values["classifier_head"] = "transformers"
    if family == "qa" and not FLAGS["qa_head"].present:
        qa_values["qa_head"] = "linear"


def settings_from_flags():
    """Checks the flags and reads the data; raises a UserError on a user mistake. No TensorFlow."""
    cli.required_flags("output_dir")
    if FLAGS.distribution_strategy == "multi_worker_mirrored":
        raise UserError("fine-tuning trains with Keras fit, which fails under MultiWorkerMirroredStrategy "
                        "(keras-team/keras#20585); use one_device, mirrored (one machine, several GPUs) or tpu")
    if FLAGS.distribution_strategy == "tpu" and not FLAGS.tpu:
        raise UserError("--distribution_strategy=tpu needs --tpu (a TPU name, or 'local' on a TPU VM)")
    if FLAGS.random_init and not FLAGS.init_checkpoint:
        raise UserError("--random_init takes the model of --init_checkpoint; without a checkpoint the model is random "
                        "anyway (give --model_size and --vocab_file)")
    if not FLAGS.init_checkpoint and not FLAGS.vocab_file:
        raise UserError("without --init_checkpoint, --vocab_file is required (the randomly initialised model's "
                        "vocabulary)")
    if FLAGS.log_every_steps <= 0:
        raise UserError(f"--log_every_steps must be positive, got {FLAGS.log_every_steps}")
    if FLAGS.new_head and not FLAGS.init_checkpoint:
        raise UserError("--new_head is for an --init_checkpoint that is a transformers task model; without one the "
                        "head is new anyway")
    values = {f.name: FLAGS[f.name].value for f in FINETUNING_FIELDS}
    qa_values = {f.name: FLAGS[f.name].value for f in QA_FIELDS}
    if not FLAGS["max_seq_length"].present and FLAGS.task in finetuning_config.TASK_MAX_SEQ_LENGTH:
        values["max_seq_length"] = finetuning_config.TASK_MAX_SEQ_LENGTH[FLAGS.task]
    _continue_task_head(values, qa_values)
    try:
        config = finetuning_config.FinetuningConfig(**values)
        qa = qa_config.QAConfig(**qa_values)
        if FLAGS.task in qa_config.QA_TASKS:
            qa.check_sequence(config.max_seq_length)
    except ValueError as e:
        raise UserError(str(e)) from None
    if FLAGS.task in conll.TAGGING_TASKS + qa_config.QA_TASKS:
        for name in ("text_a_column", "text_b_column", "label_column", "regression", "double_unordered",
                     "classifier_head"):
            if FLAGS[name].present:
                raise UserError(f"--{name} is for classification tasks, not --task={FLAGS.task}")
    if FLAGS["qa_head"].present and FLAGS.task not in qa_config.QA_TASKS:
        raise UserError(f"--qa_head is for --task=squad_v1 or squad_v2, not --task={FLAGS.task}")
    if FLAGS["tag_column"].present and FLAGS.task not in conll.TAGGING_TASKS:
        raise UserError("--tag_column is for --task=tagging or --task=chunk")
    if config.num_train_epochs is not None and config.num_train_epochs != int(config.num_train_epochs):
        raise UserError(f"--num_train_epochs must be a whole number (the dev split is evaluated after each epoch), "
                        f"got {config.num_train_epochs}")
    finetuning_config.check_output_dir(FLAGS.output_dir, FLAGS.overwrite)
    if FLAGS.init_checkpoint:
        sources.locate(FLAGS.init_checkpoint)  # a missing or unreadable path is reported before the data is read
    data = _read_task()
    if config.max_train_examples:
        data = tasks.subsample(data, config.max_train_examples)
    options = finetuning_config.RunOptions(
        output_dir=FLAGS.output_dir, overwrite=FLAGS.overwrite, init_checkpoint=FLAGS.init_checkpoint,
        random_init=FLAGS.random_init, new_head=FLAGS.new_head, model_size=FLAGS.model_size,
        architecture={name: FLAGS[name].value for name in ARCHITECTURE_FIELDS if FLAGS[name].value is not None},
        vocab_file=FLAGS.vocab_file, lowercase=FLAGS.lowercase,
        precision_policy=run_flags.PRECISIONS[FLAGS.mixed_precision],
        distribution_strategy=FLAGS.distribution_strategy, tpu=FLAGS.tpu, num_cpu_devices=FLAGS.num_cpu_devices,
        log_every_steps=FLAGS.log_every_steps, export=FLAGS.export, qa=qa)
    return data, config, options


def main(argv):
    del argv
    stop = stop_signals.install()
    data, config, options = settings_from_flags()
    for line in data.summary():
        print(line, flush=True)
    cli.start_tensorflow()
    from electra_tf.finetuning import runner

    if options.init_checkpoint:
        options = dataclasses.replace(options, pretrained=sources.resolve(options.init_checkpoint, options.lowercase))

    run_class = runner.FinetuningRun
    if FLAGS.task in conll.TAGGING_TASKS:
        from electra_tf.finetuning.tagging.runner import TaggingRun as run_class
    elif FLAGS.task in qa_config.QA_TASKS:
        from electra_tf.finetuning.qa.runner import QARun as run_class
    if runner.run(data, config, options, run_class, stop) is None:
        # Stopped by a signal, with what continues the run saved: exit now, without TensorFlow's teardown.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    define_flags()
    app.run(cli.run(main), argv=cli.argv_or_exit(configs.expand_argv))
