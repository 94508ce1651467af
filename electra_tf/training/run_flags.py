"""The flags of `run_pretraining`, generated from the config dataclasses.

Model and objective flags come from `ElectraConfig` fields and default to
the chosen `--model_size`'s values; optimizer flags come from
`OptimizerConfig` and default to its values. Names follow the original's
`configure_pretraining.py` where one exists.
"""

import dataclasses
import os
import sys
import warnings

from absl import flags

from electra_tf import configs
from electra_tf.data import format as data_format
from electra_tf.modeling import config as config_lib
from electra_tf.text import vocab as vocab_lib
from electra_tf.training import optimizer_config
from electra_tf.utils import cli
from electra_tf.utils.errors import UserError

FLAGS = flags.FLAGS

# The special-token ids are filled from the vocabulary, never set by hand.
MODEL_FIELDS = [f for f in dataclasses.fields(config_lib.ElectraConfig) if f.name not in vocab_lib.SPECIAL_TOKENS]
OPTIMIZER_FIELDS = list(dataclasses.fields(optimizer_config.OptimizerConfig))
STRATEGIES = ("one_device", "mirrored", "multi_worker_mirrored", "tpu")
PRECISIONS = {"none": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
_ENUMS = {"objective": config_lib.OBJECTIVES, "embedding_sharing": config_lib.EMBEDDING_SHARING,
          "sampler": config_lib.SAMPLERS}


def define_field(field, default, help_text):
    """Defines the flag of a config dataclass field, typed by the field (an enum when its metadata has "choices")."""
    choices = field.metadata.get("choices") or _ENUMS.get(field.name)
    if choices:
        flags.DEFINE_enum(field.name, default, choices, help_text)
    elif field.type in (bool, "bool"):
        flags.DEFINE_boolean(field.name, default, help_text)
    elif field.type in (int, "int"):
        flags.DEFINE_integer(field.name, default, help_text)
    elif field.type in (float, "float"):
        flags.DEFINE_float(field.name, default, help_text)
    else:
        flags.DEFINE_string(field.name, default, help_text)


# The model and objective flags by purpose (--helpfull lists them in these groups); every other
# ElectraConfig field is the model's shape.
OBJECTIVE_FIELDS = ("objective", "mask_prob", "mask_token_prob", "gen_weight", "disc_weight", "temperature",
                    "final_temperature", "sampler", "disallow_correct", "candidate_size", "mws_weight",
                    "teams_rtd_weight", "num_task_agnostic_layers", "shared_generator_layers")
DATA_FIELDS = ("max_seq_length", "seed")


def size_default_help(name):
    """How a model flag's default is shown: its value, or each --model_size's value when they differ.

    Example:

    >>> size_default_help("hidden_size")
    'Default: by --model_size, small 256, base 768, large 1024, tiny 64.'
    >>> size_default_help("gen_weight")
    'Default: 1.0.'
    """
    values = {size: getattr(config_lib.ElectraConfig.for_size(size), name)
              for size in ("small", "base", "large", "tiny")}
    if len(set(values.values())) == 1:
        return f"Default: {values['small']}."
    return "Default: by --model_size, " + ", ".join(f"{size} {value:.4g}" if isinstance(value, float) else
                                                    f"{size} {value}" for size, value in values.items()) + "."


def _define_model_field(field):
    if field.name == "vocab_size":
        define_field(field, None, config_lib.FIELD_HELP[field.name] + " Default: the vocabulary's size.")
    else:
        define_field(field, None, f"{config_lib.FIELD_HELP[field.name]} {size_default_help(field.name)}")


def define_flags():
    """Defines every flag of run_pretraining, in --helpfull's groups (idempotent per process)."""
    if "model_size" in FLAGS:
        return
    fields = {f.name: f for f in MODEL_FIELDS}
    with cli.flag_group("Recipe"):
        flags.DEFINE_string("config", None, "A recipe shipped with the package, by name: "
                                            f"{', '.join(configs.names())} (small, base, large: the paper's; "
                                            "quick: a first run on your own corpus). Flags after it override it; "
                                            "--flagfile=PATH takes your own. Default: none.")
    with cli.flag_group("Data"):
        flags.DEFINE_string("data_dir", None, f"Required. Directory of {data_format.SHARD_PREFIX}* shards and "
                                              f"{data_format.DATASET_INFO_FILE} (build_pretraining_dataset's output).")
        flags.DEFINE_string("vocab_file", None, "WordPiece vocab.txt the data was built with. Default: the one "
                                                "recorded in dataset_info.json, else <data_dir>/vocab.txt.")
        for name in DATA_FIELDS:
            _define_model_field(fields[name])
        flags.DEFINE_integer("shuffle_buffer", 10000, "Examples in the shuffle buffer.")
    with cli.flag_group("Model"):
        flags.DEFINE_enum("model_size", "small", config_lib.SIZES,
                          "Paper size whose values the model and objective flags default to (tiny: for tests).")
        for field in MODEL_FIELDS:
            if field.name not in OBJECTIVE_FIELDS + DATA_FIELDS:
                _define_model_field(field)
    with cli.flag_group("Objective"):
        for name in OBJECTIVE_FIELDS:
            _define_model_field(fields[name])
    with cli.flag_group("Optimizer"):
        for field in OPTIMIZER_FIELDS:
            define_field(field, field.default, optimizer_config.FIELD_HELP[field.name])
        flags.DEFINE_integer("train_batch_size", 128, "Global batch size (all replicas together).")
        flags.DEFINE_integer("gradient_accumulation_steps", 1, "Split each global batch into this many "
                                                               "micro-batches and sum their gradients: the same "
                                                               "update, less memory.")
    with cli.flag_group("Distribution"):
        flags.DEFINE_enum("distribution_strategy", "one_device", STRATEGIES, "tf.distribute strategy.")
        flags.DEFINE_string("tpu", None, "TPU name or grpc:// address for --distribution_strategy=tpu. "
                                         "Default: none.")
        flags.DEFINE_integer("num_cpu_devices", 0, "Split the CPU into this many logical devices "
                                                   "(tests mirrored training on a CPU machine); 0 = don't.")
        flags.DEFINE_enum("mixed_precision", "none", list(PRECISIONS), "Compute precision; variables stay float32.")
        flags.DEFINE_boolean("jit_compile", False, "Compile the training loop with XLA.")
        flags.DEFINE_boolean("rematerialize", False,
                             "Recompute each transformer block in the backward pass instead of keeping its "
                             "activations: the same update in less memory, for about a third more compute.")
        flags.DEFINE_integer("steps_per_loop", 50, "Optimizer steps per call of the compiled training loop.")
    with cli.flag_group("Run directory and logging"):
        flags.DEFINE_string("model_dir", None, "Required. Where checkpoints, TensorBoard logs and the export go. "
                                               "Re-using it resumes the run.")
        flags.DEFINE_integer("save_checkpoints_steps", 1000, "Write a checkpoint every this many steps.")
        flags.DEFINE_integer("keep_checkpoint_max", 5, "Checkpoints kept; older ones are deleted.")
        flags.DEFINE_integer("log_every_steps", 100, "Write TensorBoard scalars every this many steps.")
        flags.DEFINE_integer("example_every_steps", 1000, "Write a text summary of one masked/replaced example "
                                                          "every this many steps.")
        flags.DEFINE_boolean("allow_changed_settings", False,
                             "Resume even though the data, --train_batch_size, --gradient_accumulation_steps, "
                             "--shuffle_buffer, --seed, --max_seq_length or a masking/sampling/loss setting differs "
                             "from the one recorded in --model_dir. The cost: from the resumed step on, the "
                             "examples and their order differ from the recorded run's (some are repeated or "
                             "skipped), so the run no longer matches an uninterrupted one.")
        flags.DEFINE_boolean("export_at_end", True, "Write the discriminator SavedModel when training ends.")
        flags.DEFINE_boolean("export_generator", False, "Also export the generator.")


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """Everything run_pretraining needs, checked."""

    model: config_lib.ElectraConfig
    optimizer: optimizer_config.OptimizerConfig
    data_dir: str
    model_dir: str
    vocab_file: str
    dataset_info: dict


def model_overrides():
    """The model flags that were set, by ElectraConfig field name (the rest come from --model_size)."""
    return {f.name: FLAGS[f.name].value for f in MODEL_FIELDS if FLAGS[f.name].value is not None}


def settings_from_flags():
    """Validates the flags and builds the configs; raises a UserError on a user mistake."""
    cli.required_flags("data_dir", "model_dir")
    data_dir = FLAGS.data_dir
    if not os.path.isdir(data_dir):
        raise UserError(f"--data_dir {data_dir} is not a directory; build data with "
                        "build_pretraining_dataset")
    info = data_format.read_dataset_info(data_dir)
    vocab_file = FLAGS.vocab_file or info.get("vocab_file") or os.path.join(data_dir, "vocab.txt")
    try:
        vocab_ids = vocab_lib.special_token_ids(vocab_file)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from None

    overrides = model_overrides()
    if overrides.get("vocab_size", vocab_ids["vocab_size"]) != vocab_ids["vocab_size"]:
        raise UserError(f"--vocab_size {overrides['vocab_size']} disagrees with {vocab_file} "
                        f"({vocab_ids['vocab_size']} tokens); drop --vocab_size or fix --vocab_file")
    if info.get("vocab_size") not in (None, vocab_ids["vocab_size"]):
        raise UserError(f"the data in {data_dir} was built with a {info['vocab_size']}-token vocabulary but "
                        f"{vocab_file} has {vocab_ids['vocab_size']}; pass the vocab the data was built with")
    vocab_hash = info.get("vocab_sha256")
    if vocab_hash and vocab_hash != vocab_lib.file_sha256(vocab_file):
        raise UserError(f"{vocab_file} is not the vocabulary the data in {data_dir} was built with (hash differs); "
                        "pass that vocab with --vocab_file")
    try:
        model = config_lib.ElectraConfig.for_size(FLAGS.model_size, **{**overrides, **vocab_ids})
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            optimizer = optimizer_config.OptimizerConfig(**{f.name: FLAGS[f.name].value for f in OPTIMIZER_FIELDS})
    except ValueError as e:
        raise UserError(str(e)) from None
    data_length = info.get("max_seq_length")
    if data_length is not None and data_length != model.max_seq_length:
        raise UserError(f"--max_seq_length {model.max_seq_length} disagrees with the data in {data_dir} "
                        f"(built with {data_length}); set --max_seq_length={data_length}")
    for name in ("train_batch_size", "gradient_accumulation_steps", "steps_per_loop", "save_checkpoints_steps",
                 "keep_checkpoint_max",
                 "log_every_steps", "example_every_steps"):
        if FLAGS[name].value <= 0:
            raise UserError(f"--{name} must be positive, got {FLAGS[name].value}")
    if FLAGS.distribution_strategy == "tpu" and not FLAGS.tpu:
        raise UserError("--distribution_strategy=tpu needs --tpu (a TPU name, or 'local' on a TPU VM)")
    for warning in caught:  # one line each, as the tools warn
        print(f"warning: --{warning.message}", file=sys.stderr, flush=True)
    return RunSettings(model, optimizer, data_dir, FLAGS.model_dir, vocab_file, info)
