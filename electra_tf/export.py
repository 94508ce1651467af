r"""Exporting a model as a SavedModel that takes raw text.

    python -m electra_tf.export --model_dir=runs/demo [--checkpoint=runs/demo/checkpoints/ckpt-800]
    python -m electra_tf.export --model_dir=hf/sst2 [--export_dir=served/sst2] [--max_seq_length=128]

Of a pre-training run, writes the discriminator to
`<model_dir>/export/discriminator/` (`.../encoder/` for the masked-LM
objectives, without rtd_probabilities) with two signatures:
`serving_default` (int32 input_ids, input_mask, segment_ids ->
sequence_output, pooled_output, rtd_probabilities) and `serve_text` (raw
strings -> tokens, rtd_probabilities, pooled_output, tokenized in the graph
with tf-text), plus `vocab.txt`, `electra_config.json` and a model card
(`README.md`, from the run's training_record.json) beside it.

Of a transformers task model (`ElectraForSequenceClassification`,
`ElectraForTokenClassification`, `ElectraForQuestionAnswering`, and BERT's
token classifier and question answerer), writes to `<model_dir>/export/`
(or --export_dir) the SavedModel run_finetuning writes for its task, with
its head and label names: `serve_text` takes text (text_a and text_b with
--pair), sentences, or questions and contexts, and answers labels, tags or
answers as transformers' model does.

Either SavedModel loads with `tf.saved_model.load` (after
`import tensorflow_text`) in a process that imports neither electra_tf nor
torch.
"""

import os

from absl import app, flags

from electra_tf.utils import cli
from electra_tf.utils.errors import UserError

FLAGS = flags.FLAGS
# The flags that only a transformers task model takes.
TASK_FLAGS = ("max_seq_length", "pair", "no_answer")
SERVE_TEXT = {"classification": "text", "tagging": "text (sentences, split into words on whitespace)",
              "qa": "questions and contexts"}


def define_flags():
    flags.DEFINE_string("model_dir", None, "A run's model_dir (holds run_config.json and checkpoints/), or a "
                                           "transformers task model's directory (config.json, model.safetensors, "
                                           "vocab.txt).")
    flags.DEFINE_string("checkpoint", None, "Checkpoint prefix to export (default: the latest in model_dir).")
    flags.DEFINE_string("export_dir", None, "Where to write (default: <model_dir>/export).")
    flags.DEFINE_boolean("export_generator", False, "Also export the generator.")
    flags.DEFINE_integer("max_seq_length", None, "A transformers task model: tokens per example (default: the "
                                                 "length its tokenizer truncates to, tokenizer_config.json's "
                                                 "model_max_length, at most max_position_embeddings).")
    flags.DEFINE_boolean("pair", False, "A transformers sequence classifier fine-tuned on sentence pairs: "
                                        "serve_text takes text_a and text_b.")
    flags.DEFINE_boolean("no_answer", False, "A transformers question answerer fine-tuned on SQuAD 2.0: answer \"\" "
                                             "when the [CLS] span scores above the best answer.")


def export_task_model(head, export_dir, max_seq_length=None, pair=False, no_answer=False):
    """Writes the serve_text SavedModel of the transformers task model `head` describes; returns a report line."""
    if head.unsupported:
        sentence, _ = head.mismatch(head.family)
        raise UserError(f"{sentence}; it cannot be served as it is: fine-tune its encoder here under a new head "
                        f"(run_finetuning --init_checkpoint={head.path} --new_head)")
    from electra_tf.finetuning.classifier import ElectraClassifier
    from electra_tf.finetuning.qa.answerer import ElectraQuestionAnswerer
    from electra_tf.finetuning.qa.config import QAConfig
    from electra_tf.finetuning.tagging.tagger import ElectraTagger

    length = max_seq_length or head.max_length
    if head.family == "classification":
        model = ElectraClassifier.from_pretrained(head.path, sequence_length=length, pair=pair)
        model.export(export_dir)
    elif head.family == "tagging":
        ElectraTagger.from_pretrained(head.path, sequence_length=length).export(export_dir)
    else:
        qa = QAConfig(qa_head="linear")
        if qa.max_query_length + 4 > length:
            raise UserError(f"a question answerer reads [CLS] question (up to {qa.max_query_length} pieces) [SEP] "
                            f"context [SEP], which {length} tokens cannot hold; give --max_seq_length of at least "
                            f"{qa.max_query_length + 4}")
        ElectraQuestionAnswerer.from_pretrained(head.path, qa, sequence_length=length).export(export_dir, no_answer)
    inputs = "text_a and text_b" if pair else SERVE_TEXT[head.family]
    return f"exported {head.path} ({head.describe()}; {length} tokens) to {export_dir}: serve_text takes {inputs}"


def _check_flags(head):
    given = [name for name in TASK_FLAGS if FLAGS[name].present]
    if head is None and given:
        raise UserError(f"--{given[0]} is for a transformers task model; {FLAGS.model_dir} is not one")
    if head is None:
        return
    for name in ("checkpoint", "export_generator"):
        if FLAGS[name].present:
            raise UserError(f"--{name} is for a pre-training run; {FLAGS.model_dir} is a transformers task model "
                            f"({head.architecture})")
    if FLAGS.pair and head.family != "classification":
        raise UserError(f"--pair is for a sequence classifier; {FLAGS.model_dir} is {head.architecture}")
    if FLAGS.no_answer and head.family != "qa":
        raise UserError(f"--no_answer is for a question answerer; {FLAGS.model_dir} is {head.architecture}")
    if FLAGS.max_seq_length is not None and not 3 <= FLAGS.max_seq_length:
        raise UserError(f"--max_seq_length must hold [CLS] and two [SEP], got {FLAGS.max_seq_length}")


def main(argv):
    del argv
    from electra_tf.finetuning import sources

    cli.required_flags("model_dir")
    for path in (FLAGS.model_dir, FLAGS.checkpoint):
        if path:
            sources.locate(path)
    head = sources.task_head(FLAGS.model_dir)
    _check_flags(head)
    cli.start_tensorflow()  # before the imports below load TensorFlow, so that it starts quietly
    if head is not None:
        print(export_task_model(head, FLAGS.export_dir or os.path.join(FLAGS.model_dir, "export"),
                                FLAGS.max_seq_length, FLAGS.pair, FLAGS.no_answer))
        return
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
