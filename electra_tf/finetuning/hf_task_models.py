"""A run_finetuning output directory -> a transformers task model (config.json, model.safetensors, tokenizer).

    classification and regression, --classifier_head=transformers -> ElectraForSequenceClassification
    tagging and chunk                                             -> ElectraForTokenClassification
    squad_v1 and squad_v2, --qa_head=linear                       -> ElectraForQuestionAnswering

The encoder is written through `hf_checkpoint`'s tower mapping and the
heads map one to one (torch's Linear stores its kernel transposed):

    classifier_head/dense, classifier_head/out_proj -> classifier.dense, classifier.out_proj
    tagger_head                                     -> classifier
    qa_head/qa_outputs                              -> qa_outputs

Three differences of layout are folded into the weights, so transformers
gives this project's outputs on the inputs its tokenizer makes:

- the tagger reads a sentence with segment id 1 on every token (the
  original's tagging layout) where transformers' tokenizer gives 0: the
  two segment-embedding rows are swapped;
- a regression's label scale (STS-B trains on scores / 5) multiplies the
  output layer, so transformers' logit is the score in the task's units;
- the tagger has no dropout before its dense layer: `classifier_dropout`
  is 0, so training on in transformers keeps it that way.

The original's classification head (one dense layer) and QA head (start-
conditioned ends, an answerability classifier) have no transformers
class that holds them; converting them is a one-line error that names
the option to fine-tune with instead.
"""

import dataclasses
import json
import os

import numpy as np

from electra_tf.convert import hf_checkpoint, pretrainer_weights
from electra_tf.convert.original_layout import DISCRIMINATOR_SCOPE
from electra_tf.finetuning.config import MARKER
from electra_tf.finetuning.qa.config import QA_TASKS
from electra_tf.finetuning.tagging.conll import TAGGING_TASKS
from electra_tf.utils.errors import UserError

ARCHITECTURES = {"classification": "ElectraForSequenceClassification", "tagging": "ElectraForTokenClassification",
                 "qa": "ElectraForQuestionAnswering"}
# How transformers reads each class (transformers 5 has no question-answering pipeline).
USES = {"classification": 'pipeline("text-classification")', "tagging": 'pipeline("token-classification")',
        "qa": "AutoModelForQuestionAnswering"}


@dataclasses.dataclass
class FinetunedModel:
    """A fine-tuned model read back from its run: what it was trained on, and its weights."""

    run_dir: str
    record: dict  # finetuning_config.json
    family: str  # "classification", "tagging" or "qa"
    checkpoint: str
    model: object  # the ElectraClassifier, ElectraTagger or ElectraQuestionAnswerer, with its weights and preprocessor

    @property
    def architecture(self):
        return ARCHITECTURES[self.family]

    @property
    def labels(self):
        """The label names in id order (the tags of a tagger); None for regression and QA."""
        if self.family == "tagging":
            return list(self.record["tags"])
        return list(self.record["labels"]) if self.family == "classification" and self.record["labels"] else None


def read_record(run_dir):
    """(finetuning_config.json as a dict, task family) of a run_finetuning output directory."""
    path = os.path.join(run_dir, MARKER)
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except FileNotFoundError:
        raise UserError(f"{path} not found; --model_dir must be a run_finetuning output_dir") from None
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {path} ({e}); it is not run_finetuning's record: fine-tune again") from None
    if not isinstance(record, dict) or "task" not in record or "electra_config" not in record:
        raise UserError(f"{path} lacks the task or the model's config; it is not run_finetuning's record")
    task = record["task"]
    family = "qa" if task in QA_TASKS else "tagging" if task in TAGGING_TASKS else "classification"
    return record, family


def check_convertible(record, family, run_dir):
    """Raises the one-line UserError of a head transformers has no class for."""
    if family == "classification":
        head = record.get("hyperparameters", {}).get("classifier_head", "original")
        if head != "transformers":
            raise UserError(f"{run_dir} is a classifier with the original's head (one dense layer on [CLS]), which "
                            "ElectraForSequenceClassification (dense -> GELU -> dense) cannot hold exactly; fine-tune "
                            "with --classifier_head=transformers to convert it")
    if family == "qa" and record.get("qa", {}).get("qa_head", "original") != "linear":
        raise UserError(f"{run_dir} is a question answerer with the original's head (start-conditioned ends and an "
                        "answerability classifier), which ElectraForQuestionAnswering (one dense layer for starts and "
                        "ends) has no place for; fine-tune with --qa_head=linear to convert it")


def _selected_checkpoint(run_dir, record):
    """The checkpoint of the model the run selected (the best epoch; of the best trial when there were several)."""
    from electra_tf.finetuning import resume
    from electra_tf.finetuning.config import RESULTS_FILE

    directory = run_dir
    if record.get("hyperparameters", {}).get("num_trials", 1) > 1:
        path = os.path.join(run_dir, RESULTS_FILE)
        try:
            with open(path, encoding="utf-8") as f:
                trial = json.load(f)["predictions_from_trial"]
        except (OSError, ValueError, KeyError, TypeError):
            raise UserError(f"{path} does not say which trial was selected (did the run finish?); give "
                            f"--checkpoint={run_dir}/trial_<k>/checkpoints/best-<epoch>") from None
        directory = os.path.join(run_dir, f"trial_{trial}")
    try:  # read, not load_trial: converting must not tidy the run's directory
        with open(os.path.join(directory, resume.TRIAL_STATE), encoding="utf-8") as f:
            best = json.load(f).get("best_checkpoint")
    except (OSError, ValueError):
        best = None
    if not best:
        raise UserError(f"no checkpoint in {directory}/checkpoints; the run saved none (it keeps its best epoch's "
                        "weights once an epoch is done): let it finish an epoch, or give --checkpoint")
    return os.path.join(directory, best)


def _build(record, family, vocab_file):
    """The fine-tuning model the record describes, with fresh weights and the run's preprocessor."""
    from electra_tf.finetuning.preprocessing import ElectraPreprocessor
    from electra_tf.modeling.config import ElectraConfig

    config = ElectraConfig.from_dict(record["electra_config"])
    preprocessor = ElectraPreprocessor(vocab_file, record["lowercase"], config.max_seq_length)
    if family == "classification":
        from electra_tf.finetuning.classifier import ElectraClassifier

        return ElectraClassifier(config, num_classes=len(record["labels"] or [None, None]),
                                 regression=record["labels"] is None, preprocessor=preprocessor,
                                 classifier_head=record["hyperparameters"]["classifier_head"])
    if family == "tagging":
        from electra_tf.finetuning.tagging.tagger import ElectraTagger

        return ElectraTagger(config, record["tags"], preprocessor=preprocessor)
    from electra_tf.finetuning.qa.answerer import ElectraQuestionAnswerer
    from electra_tf.finetuning.qa.config import QAConfig

    return ElectraQuestionAnswerer(config, preprocessor=preprocessor, qa=QAConfig(**record["qa"]))


def read_finetuned(run_dir, checkpoint=None):
    """The `FinetunedModel` of a run_finetuning output directory; refuses a head with no transformers class.

    Args:
        run_dir: the run's output_dir (finetuning_config.json, vocab.txt, checkpoints/).
        checkpoint: a checkpoint prefix of the run (default: the one the run selected).
    """
    import tensorflow as tf

    from electra_tf.finetuning.runner import weights_checkpoint

    record, family = read_record(run_dir)
    check_convertible(record, family, run_dir)
    if checkpoint is None:
        checkpoint = _selected_checkpoint(run_dir, record)
    elif not tf.io.gfile.exists(checkpoint + ".index"):
        raise UserError(f"--checkpoint {checkpoint} is not a checkpoint (no {checkpoint}.index); give "
                        f"<run>/checkpoints/best-<epoch>")
    vocab_file = os.path.join(run_dir, "vocab.txt")
    if not os.path.isfile(vocab_file):
        raise UserError(f"{vocab_file} not found; the run's vocabulary is part of the model: copy it back")
    model = _build(record, family, vocab_file)
    try:
        weights_checkpoint(model).read(checkpoint).expect_partial().assert_existing_objects_matched()
    except (tf.errors.OpError, AssertionError, ValueError) as e:
        raise UserError(f"cannot read the model of {run_dir} from {checkpoint} ({str(e).splitlines()[0]}); is it "
                        "a checkpoint of this run?") from None
    return FinetunedModel(run_dir, record, family, checkpoint, model)


def _dense(prefix, layer, scale=1.0):
    kernel, bias = (np.asarray(v.numpy(), np.float32) * scale for v in (layer.kernel, layer.bias))
    return {f"{prefix}.weight": np.ascontiguousarray(kernel.T), f"{prefix}.bias": bias}


def task_tensors(finetuned):
    """`{transformers key: array}` of the task model: the `electra.*` tower and the head."""
    model = finetuned.model
    encoder = model.encoder
    pairs = pretrainer_weights.embedding_tables(encoder.embeddings.tables())
    pairs += pretrainer_weights.encoder_variables(DISCRIMINATOR_SCOPE, encoder.projection, encoder.blocks)
    tower = hf_checkpoint.tower_tensors(pretrainer_weights.extract(pairs), model.config, "discriminator",
                                        with_head=False)
    tensors = {f"electra.{key}": value for key, value in tower.items()}
    if finetuned.family == "classification":
        head = model.head
        scale = finetuned.record.get("label_scale", 1.0) if model.regression else 1.0
        tensors.update(_dense("classifier.dense", head.dense))
        tensors.update(_dense("classifier.out_proj", head.out_proj, scale))
    elif finetuned.family == "tagging":
        segments = "electra.embeddings.token_type_embeddings.weight"
        tensors[segments] = np.ascontiguousarray(tensors[segments][[1, 0, *range(2, len(tensors[segments]))]])
        tensors.update(_dense("classifier", model.head))
    else:
        tensors.update(_dense("qa_outputs", model.head.dense))
    return tensors


def task_config(finetuned):
    """The config.json of the task model: the tower's, the class, and the labels."""
    model = finetuned.model
    config = hf_checkpoint.hf_config(model.config, "discriminator", with_head=False)
    config["architectures"] = [finetuned.architecture]
    labels = finetuned.labels
    if finetuned.family == "classification":
        config["classifier_dropout"] = model.dropout_rate
        config["problem_type"] = "regression" if model.regression else "single_label_classification"
        labels = labels or ["score"]
    elif finetuned.family == "tagging":
        config["classifier_dropout"] = 0.0
    else:
        labels = ["start", "end"]
    config["num_labels"] = len(labels)
    config["id2label"] = {str(i): label for i, label in enumerate(labels)}
    config["label2id"] = {label: i for i, label in enumerate(labels)}
    return config


def write_task_model(finetuned, directory):
    """Writes config.json, model.safetensors and the tokenizer files of `finetuned` into `directory` (existing)."""
    from safetensors.numpy import save_file

    save_file(task_tensors(finetuned), os.path.join(directory, hf_checkpoint.WEIGHTS), metadata={"format": "pt"})
    with open(os.path.join(directory, hf_checkpoint.CONFIG), "w", encoding="utf-8") as f:
        json.dump(task_config(finetuned), f, indent=2, sort_keys=True)
    # model_max_length is the length the model was fine-tuned at, so truncation=True cuts as its export does.
    hf_checkpoint.write_tokenizer(directory, os.path.join(finetuned.run_dir, "vocab.txt"),
                                  finetuned.record["lowercase"], finetuned.model.config.max_seq_length)
