r"""Converts ELECTRA checkpoints between Hugging Face, the original TF1 code, keras-hub and electra-tf.

Import (the output is a model_dir that run_pretraining continues from):

    python -m electra_tf.convert_checkpoint --hf_discriminator=electra-small-discriminator \
        --hf_generator=electra-small-generator --output_dir=runs/electra_small
    python -m electra_tf.convert_checkpoint --tf1_checkpoint=electra_small --output_dir=runs/electra_small

Export (from a model_dir of run_pretraining or of an import):

    python -m electra_tf.convert_checkpoint --model_dir=runs/electra_small --to_hf=hf/electra_small
    python -m electra_tf.convert_checkpoint --model_dir=runs/electra_small --to_keras_hub=keras_hub/electra_small

A fine-tuned model (a run_finetuning output_dir) exports to the matching
transformers class, with its label names and tokenizer, for
from_pretrained and pipeline():

    python -m electra_tf.convert_checkpoint --model_dir=runs/small_sst2 --to_hf=hf/small_sst2

Every output directory is written beside its destination and renamed into
place when complete; a mistake in the input stops the run with one line
`error: <what>; <what to do>` and nothing written.
"""

import dataclasses
import json
import os

from absl import app, flags

from electra_tf.utils import cli
from electra_tf.utils.atomic import atomic_directory, check_free
from electra_tf.utils.errors import UserError

# The Hugging Face model cards' metadata unless --license and --language say otherwise.
CARD_LICENSE = "apache-2.0"
CARD_LANGUAGE = "en"
# The model card's name for each fine-tuned task family.
CARD_KINDS = {"classification": "classifier", "tagging": "tagger", "qa": "answerer"}
# Every flag, as (definer, help); each is also a field of Options. All default to None: "not given".
FLAG_HELP = {
    "hf_discriminator": (flags.DEFINE_string, "Import: Hugging Face ElectraForPreTraining directory "
                                              "(config.json + model.safetensors)."),
    "hf_generator": (flags.DEFINE_string, "Import: Hugging Face ElectraForMaskedLM directory of the same pair "
                                          "(optional; without it the generator starts from random init)."),
    "tf1_checkpoint": (flags.DEFINE_string, "Import: original google-research/electra checkpoint prefix, or the "
                                            "directory holding it."),
    "output_dir": (flags.DEFINE_string, "Import: the model_dir to create (must not exist or be empty)."),
    "vocab_file": (flags.DEFINE_string, "Import: the model's vocab.txt (default: vocab.txt in the HF "
                                        "discriminator directory or beside the TF1 checkpoint)."),
    "lowercase": (flags.DEFINE_boolean, "Import: whether the model's text is lower-cased (default: HF "
                                        "tokenizer_config.json's do_lower_case, else true)."),
    "max_seq_length": (flags.DEFINE_integer, "Import: sequence length to record for continued pre-training "
                                             "(default: the paper size's, at most max_position_embeddings)."),
    "num_heads": (flags.DEFINE_integer, "Import from TF1: attention heads, which TF1 checkpoints do not record "
                                        "(default: the original's hidden_size // 64)."),
    "generator_hidden_size": (flags.DEFINE_float, "Import without a generator: the new generator's size as a "
                                                  "fraction of the discriminator's (default: the paper size's)."),
    "model_dir": (flags.DEFINE_string, "Export: a model_dir written by run_pretraining or an import, or a "
                                       "run_finetuning output_dir (a fine-tuned model: --to_hf only)."),
    "checkpoint": (flags.DEFINE_string, "Export: checkpoint prefix (default: the latest in --model_dir; of a "
                                        "fine-tuning run, the checkpoint it selected)."),
    "to_hf": (flags.DEFINE_string, "Export: directory to create with discriminator/ and generator/ for "
                                   "transformers' from_pretrained; of a fine-tuned model, the transformers task "
                                   "model (ElectraForSequenceClassification, ElectraForTokenClassification or "
                                   "ElectraForQuestionAnswering) with its tokenizer."),
    "to_keras_hub": (flags.DEFINE_string, "Export: keras-hub preset directory to create (ElectraBackbone + "
                                          "ElectraTokenizer)."),
    "license": (flags.DEFINE_string, "Export to Hugging Face: the license in the model cards' metadata, as the Hub "
                                     f"names it (default: {CARD_LICENSE}, the original ELECTRA models')."),
    "language": (flags.DEFINE_string, "Export to Hugging Face: the language code of the training text in the model "
                                      f"cards' metadata (default: {CARD_LANGUAGE})."),
}

Options = dataclasses.make_dataclass(
    "Options", [(name, object, dataclasses.field(default=None)) for name in FLAG_HELP], frozen=True)
Options.__doc__ = ("The command line: one field per flag, None when not given (library callers and tests build it "
                   "directly).")


def define_flags():
    """Defines this command's flags from FLAG_HELP."""
    for name, (define, help_text) in FLAG_HELP.items():
        define(name, None, help_text)


def _check_mode(options):
    imports = [name for name in ("hf_discriminator", "tf1_checkpoint") if getattr(options, name)]
    exports = [name for name in ("to_hf", "to_keras_hub") if getattr(options, name)]
    if imports and exports:
        raise UserError(f"--{imports[0]} imports and --{exports[0]} exports; run one conversion at a time")
    if len(imports) > 1:
        raise UserError("--hf_discriminator and --tf1_checkpoint are two sources; give one")
    if options.hf_generator and not options.hf_discriminator:
        raise UserError("--hf_generator needs --hf_discriminator (the generator shares the discriminator's "
                        "embeddings)")
    if imports and not options.output_dir:
        raise UserError("an import needs --output_dir (the model_dir to create)")
    if exports and not options.model_dir:
        raise UserError("an export needs --model_dir (the run to export)")
    if not imports and not exports:
        raise UserError("nothing to do: give --hf_discriminator or --tf1_checkpoint with --output_dir, or "
                        "--model_dir with --to_hf and/or --to_keras_hub (see --help)")
    return "import" if imports else "export"


def import_checkpoint(options):
    """Runs an import; returns the report lines."""
    from electra_tf.convert import checkpoint_import

    check_free(options.output_dir, "output_dir")
    if options.hf_discriminator:
        imported = checkpoint_import.from_hf(options.hf_discriminator, options.hf_generator, options.vocab_file,
                                             options.lowercase)
    else:
        imported = checkpoint_import.from_tf1(options.tf1_checkpoint, options.vocab_file, options.lowercase,
                                              options.num_heads)
    config = checkpoint_import.make_config(imported, options.max_seq_length, options.generator_hidden_size)
    pretrainer, shared = checkpoint_import.build_pretrainer(imported, config)
    with atomic_directory(options.output_dir) as staging:
        checkpoint_import.write_model_dir(pretrainer, imported, staging)
    out = options.output_dir
    gen_hidden, gen_heads, _ = config.generator_dims
    gen_layers = config.tower_layers("generator")
    gen_depth = f" / {gen_layers} layer{'s' * (gen_layers != 1)}" if gen_layers != config.num_layers else ""
    return [
        f"read {imported.source}: {config.num_layers} layers, discriminator {config.hidden_size} hidden / "
        f"{config.num_heads} heads, generator {gen_hidden} / {gen_heads}{gen_depth}, "
        f"embeddings {config.embedding_size}, "
        f"vocabulary {config.vocab_size}",
        *imported.notes, shared,
        f"wrote {out}: checkpoints/ckpt-0, run_config.json, vocab.txt, model.flags, export/discriminator",
        f"continue pre-training: python -m electra_tf.run_pretraining --flagfile={out}/model.flags "
        f"--data_dir=DATA --model_dir={out}   (build DATA with --vocab_file={out}/vocab.txt "
        f"--max_seq_length={config.max_seq_length})",
    ]


def export_finetuned(options):
    """Writes the fine-tuned model of `--model_dir` (a run_finetuning output_dir) as a transformers task model."""
    from electra_tf.finetuning import hf_task_models

    if options.to_keras_hub:
        raise UserError(f"{options.model_dir} is a fine-tuned model; --to_keras_hub writes a pre-trained encoder: "
                        "use --to_hf (a transformers task model)")
    check_free(options.to_hf, "to_hf")
    from electra_tf.serving import model_card

    finetuned = hf_task_models.read_finetuned(options.model_dir, options.checkpoint)
    kind = CARD_KINDS[finetuned.family]
    # The export's record adds what the run measured (dev metrics, wall time, hardware) to the run's.
    record = finetuned.record
    exported = os.path.join(options.model_dir, "export", "finetuning_config.json")
    if os.path.exists(exported):
        with open(exported, encoding="utf-8") as f:
            record = {**record, **json.load(f)}
    with atomic_directory(options.to_hf) as staging:
        hf_task_models.write_task_model(finetuned, staging)
        front = model_card.hf_front_matter(kind, options.license or CARD_LICENSE, options.language or CARD_LANGUAGE)
        model_card.write_card(staging, model_card.finetuned_card(
            kind, finetuned.model.config, finetuned.record["lowercase"], record,
            finetuned.labels, fmt="hf", front_matter=front))
    labels = finetuned.labels
    shown = f"; labels {', '.join(labels)}" if labels and finetuned.family != "qa" else ""
    return [f"read {finetuned.checkpoint}: {finetuned.record['task']}{shown}",
            f"wrote {options.to_hf} ({finetuned.architecture}, with its tokenizer) for transformers' "
            f"from_pretrained and {hf_task_models.USES[finetuned.family]}"]


def export_checkpoint(options):
    """Runs the exports of `--model_dir`; returns the report lines."""
    from electra_tf.convert import hf_checkpoint, keras_hub_export, pretrainer_weights
    from electra_tf.finetuning.config import MARKER
    from electra_tf.serving import model_card
    from electra_tf.training import run_state

    if os.path.exists(os.path.join(options.model_dir, MARKER)):
        return export_finetuned(options)
    if os.path.isdir(options.model_dir) and not os.path.exists(os.path.join(options.model_dir, run_state.RUN_CONFIG)):
        raise UserError(f"{options.model_dir} holds neither {run_state.RUN_CONFIG} nor {MARKER}; --model_dir must be "
                        "a directory written by run_pretraining, convert_checkpoint or run_finetuning")
    for flag in ("to_hf", "to_keras_hub"):
        if getattr(options, flag):
            check_free(getattr(options, flag), flag)
    try:
        state = run_state.load(options.model_dir)
        pretrainer = run_state.restore_pretrainer(state, options.checkpoint)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from None
    if pretrainer.generator is None or (pretrainer.objective.kept != "discriminator"
                                        and pretrainer.objective.detection_head):
        raise UserError(f"{options.model_dir} holds a {state.config.objective} run, which has no discriminator; only "
                        "runs with one (electra, electra_15, all_tokens_mlm, teams, mc_bert) convert")
    # Everything that can refuse runs before anything is written.
    backbone = keras_hub_export.build_backbone(pretrainer) if options.to_keras_hub else None
    record = run_state.load_training_record(options.model_dir)
    lines = []
    if options.to_hf:
        objective = pretrainer.objective
        tensors = pretrainer_weights.extract(pretrainer_weights.pretrainer_variables(pretrainer))
        with atomic_directory(options.to_hf) as staging:
            for tower in ("discriminator", "generator"):
                hf_checkpoint.write_tower(tensors, state.config, tower, os.path.join(staging, tower),
                                          state.vocab_file, state.lowercase,
                                          with_head=tower == "generator" or objective.detection_head)
                shown = tower if tower == "generator" or objective.detection_head else "encoder"
                front = model_card.hf_front_matter(tower, options.license or CARD_LICENSE,
                                                   options.language or CARD_LANGUAGE)
                model_card.write_card(os.path.join(staging, tower), model_card.pretrained_card(
                    state.config, state.lowercase, shown, record, "hf", options.model_dir, front))
        architecture = hf_checkpoint.ARCHITECTURES["discriminator"] if objective.detection_head \
            else hf_checkpoint.HEADLESS
        lines.append(f"wrote {options.to_hf}/discriminator ({architecture}) and {options.to_hf}/generator "
                     "(ElectraForMaskedLM) for transformers' from_pretrained")
        if not objective.detection_head:
            lines.append(f"dropped {objective.pretraining_only}: {state.config.objective}'s pre-training heads, "
                         "which transformers' ELECTRA has no place for")
    if backbone is not None:
        difference = keras_hub_export.gelu_difference(pretrainer, backbone)
        with atomic_directory(options.to_keras_hub) as staging:
            keras_hub_export.write_preset(backbone, state.vocab_file, state.lowercase, staging)
            shown = "discriminator" if pretrainer.objective.detection_head else "encoder"
            model_card.write_card(staging, model_card.pretrained_card(
                state.config, state.lowercase, shown, record, "keras_hub", options.model_dir))
        lines += [f"wrote {options.to_keras_hub}: keras_hub.models.ElectraBackbone.from_preset loads it "
                  "(with ElectraTokenizer)",
                  f"keras-hub's tanh-approximated GELU moves sequence_output by at most {difference:.3g} on a "
                  "probe batch (this model uses the exact erf GELU)",
                  "pooled_dense has no ELECTRA counterpart: set to identity kernel and zero bias, so "
                  "pooled_output = tanh(the [CLS] state)"]
    return lines


def run(options):
    """Checks `options` and runs the conversion; returns report lines, raises UserError on a user mistake."""
    mode = _check_mode(options)
    return import_checkpoint(options) if mode == "import" else export_checkpoint(options)


def main(argv):
    del argv
    values = {name: flags.FLAGS[name].value for name in FLAG_HELP}
    cli.start_tensorflow()
    for line in run(Options(**values)):
        print(line, flush=True)


if __name__ == "__main__":
    define_flags()
    app.run(cli.run(main))
