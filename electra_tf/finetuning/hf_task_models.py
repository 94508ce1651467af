"""This project's fine-tuned models and transformers' task models, both ways.

Out, a run_finetuning output directory -> a transformers task model
(config.json, model.safetensors, tokenizer; `read_finetuned`, `write_task_model`):

    classification and regression, --classifier_head=transformers -> ElectraForSequenceClassification
    tagging and chunk                                             -> ElectraForTokenClassification
    squad_v1 and squad_v2, --qa_head=linear                       -> ElectraForQuestionAnswering

In, the same classes (and BertForTokenClassification and
BertForQuestionAnswering, which have the same heads) -> `ElectraClassifier`
with `classifier_head="transformers"`, `ElectraTagger`, and
`ElectraQuestionAnswerer` with `qa_head="linear"`, with the label names of
`id2label` in id order (`task_head`, `load_head`; the resolver,
electra_tf.finetuning.sources, reads such a directory with its head).

The encoder goes through `hf_checkpoint`'s tower mapping and the heads
map one to one, both ways (torch's Linear stores its kernel transposed):

    classifier_head/dense, classifier_head/out_proj <-> classifier.dense, classifier.out_proj
    tagger_head                                     <-> classifier
    qa_head/qa_outputs                              <-> qa_outputs

Three differences of layout are folded into the weights, so transformers
gives this project's outputs on the inputs its tokenizer makes:

- the tagger reads a sentence with segment id 1 on every token (the
  original's tagging layout) where transformers' tokenizer gives 0: the
  two segment-embedding rows are swapped (back, coming in);
- a regression's label scale (STS-B trains on scores / 5) multiplies the
  output layer going out, so transformers' logit is the score in the
  task's units; coming in the scale is 1 (run_finetuning divides by its
  task's scale to continue);
- the tagger has no dropout before its dense layer: `classifier_dropout`
  is 0, so training on in transformers keeps it that way.

The original's classification head (one dense layer) and QA head (start-
conditioned ends, an answerability classifier) have no transformers
class that holds them; converting them is a one-line error that names
the option to fine-tune with instead. Coming in, BERT's sequence
classifier (its pooler, dense -> tanh, then a dense layer) has no head
here that computes it, and a multi-label classifier (a sigmoid per
label) is not the softmax classifier here: both are one-line errors.
"""

import dataclasses
import json
import os
import re

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
                                 classifier_head=record["hyperparameters"]["classifier_head"], labels=record["labels"])
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


# The transformers prefix of each dense layer of a head, its output layer last: the one mapping, both ways.
HEAD_PREFIXES = {"classification": ("classifier.dense", "classifier.out_proj"), "tagging": ("classifier",),
                 "qa": ("qa_outputs",)}
SEGMENTS = "electra.embeddings.token_type_embeddings.weight"


def _head_layers(model, family):
    """The Dense layers of `model`'s head in the order of HEAD_PREFIXES[family]."""
    if family == "classification":
        return model.head.dense, model.head.out_proj
    return (model.head,) if family == "tagging" else (model.head.dense,)


def swap_segments(table):
    """The segment-embedding table with rows 0 and 1 swapped: the tagger's segment 1 is transformers' 0."""
    return np.ascontiguousarray(table[[1, 0, *range(2, len(table))]])


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
    family = finetuned.family
    if family == "tagging":
        tensors[SEGMENTS] = swap_segments(tensors[SEGMENTS])
    scale = finetuned.record.get("label_scale", 1.0) if family == "classification" and model.regression else 1.0
    layers = _head_layers(model, family)
    for k, (prefix, layer) in enumerate(zip(HEAD_PREFIXES[family], layers)):
        tensors.update(_dense(prefix, layer, scale if k == len(layers) - 1 else 1.0))
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


# ---------------------------------------------------------------- in: transformers -> here

# The transformers task classes by task family. BERT's sequence classifier is known in order to say why it
# does not come in; its token classifier and question answerer have ELECTRA's heads.
TASK_CLASSES = {**{architecture: family for family, architecture in ARCHITECTURES.items()},
                "BertForSequenceClassification": "classification", "BertForTokenClassification": "tagging",
                "BertForQuestionAnswering": "qa"}
MODEL_NAMES = {"classification": "ElectraClassifier", "tagging": "ElectraTagger", "qa": "ElectraQuestionAnswerer"}
# The names transformers gives classes nobody named: they match any names, by id.
_UNNAMED = re.compile(r"LABEL_[0-9]+")


def _a(word):
    return f"an {word}" if word[0].lower() in "aeiou" else f"a {word}"


def _listed(names):
    return ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")


@dataclasses.dataclass(frozen=True)
class TaskHead:
    """The head of a transformers task model directory, as a model here takes it.

    Args:
        path: the directory.
        architecture: its transformers class (`architectures` of its config.json).
        family: "classification", "tagging" or "qa".
        labels: the label names (the tags of a tagger) in id order; None for regression and QA.
        dropout: its `classifier_dropout`, or None.
        unsupported: why no model here can hold it (None when one can).
        max_length: the length its tokenizer truncates to (tokenizer_config.json's model_max_length, at most
            max_position_embeddings).
        tensors: `{transformers key: array}` of the head's dense layers (None until the weights are read).

    Example:

    >>> head = TaskHead("hf/pos", "ElectraForTokenClassification", "tagging", labels=("NN", "DT"))
    >>> head.order(["DT", "NN"]), head.mismatch("tagging", ["NN", "VB"])
    ([1, 0], ('hf/pos holds an ElectraForTokenClassification head for tags NN, DT, not tags NN, VB', 'labels'))
    """

    path: str
    architecture: str
    family: str
    labels: tuple = None
    dropout: float = None
    unsupported: str = None
    max_length: int = 512
    tensors: dict = None

    @property
    def regression(self):
        return self.family == "classification" and self.labels is None

    def describe(self):
        """What it is, for messages: "ElectraForSequenceClassification head for labels neg, pos"."""
        head = f"{self.architecture} head"
        if self.family == "qa":
            return f"{head} (start and end logits)"
        if self.regression:
            return f"{head} for regression (one score)"
        return f"{head} for {'tags' if self.family == 'tagging' else 'labels'} {_listed(self.labels)}"

    def order(self, labels):
        """For each of `labels`, the id of the same label in the head; None when they are not its labels.

        Names match whatever their order; transformers' unnamed classes (LABEL_0, LABEL_1, ...) match any
        names by id.
        """
        theirs = list(self.labels)
        if labels is None or len(labels) != len(theirs):
            return None
        if sorted(labels) == sorted(theirs):
            return [theirs.index(label) for label in labels]
        if all(_UNNAMED.fullmatch(name) for name in theirs):
            return list(range(len(theirs)))
        return None

    def mismatch(self, family, labels=None, regression=False, kind=None):
        """Why a model of `family` with these settings cannot hold the head, or None when it can.

        Args:
            family: the model's task family.
            labels: its label names (tags); None for regression and QA.
            regression: whether it is a regression.
            kind: its head option: classifier_head ("original" or "transformers") or qa_head ("original" or
                "linear"); None for a tagger.

        Returns:
            None, or (a sentence saying what does not fit, the setting at fault: "unsupported", "family",
            "kind", "regression" or "labels").
        """
        if self.unsupported:
            return f"{self.path} is {_a(self.architecture)}, {self.unsupported}", "unsupported"
        holds = f"{self.path} holds {_a(self.describe())}"
        if family != self.family:
            return f"{holds}, which {_a(MODEL_NAMES[family])} cannot hold", "family"
        if family == "classification" and kind != "transformers":
            return f"{holds}: transformers' head (dense -> GELU -> dense), not the original's one dense layer", "kind"
        if family == "qa" and kind != "linear":
            return (f"{holds}: transformers' linear head, not the original's (start-conditioned ends, "
                    "answerability)"), "kind"
        if family == "classification" and regression != self.regression:
            return f"{holds}, not {'a regression' if regression else 'a classifier'}", "regression"
        if family != "qa" and not regression and self.order(labels) is None:
            return f"{holds}, not {'tags' if family == 'tagging' else 'labels'} {_listed(list(labels))}", "labels"
        return None


def task_head(directory, config):
    """The `TaskHead` (without its tensors) of a transformers directory's config.json; None when not a task model.

    Reads no weights.

    Args:
        directory: the directory.
        config: its config.json, as a dict.

    Example:

    >>> task_head("hf/sst2", {"architectures": ["ElectraForSequenceClassification"],
    ...                       "id2label": {"0": "negative", "1": "positive"}}).describe()
    'ElectraForSequenceClassification head for labels negative, positive'
    >>> task_head("hf/sst2", {"architectures": ["BertForSequenceClassification"]}).unsupported
    "whose head is BERT's pooler (dense -> tanh) and a dense layer, which no classifier head here computes \
(the transformers head applies GELU where the pooler applies tanh)"
    """
    architecture = next((name for name in config.get("architectures") or () if name in TASK_CLASSES), None)
    if architecture is None:
        return None
    family = TASK_CLASSES[architecture]
    id2label = config.get("id2label") or {}
    try:
        labels = [str(id2label[key]) for key in sorted(id2label, key=int)]
        named = [int(key) for key in sorted(id2label, key=int)] == list(range(len(labels)))
    except (ValueError, TypeError):
        named = False
    if not id2label:
        labels, named = [f"LABEL_{i}" for i in range(config.get("num_labels", 2))], True
    unsupported = None
    if not named:
        unsupported = "whose id2label does not name the classes 0, 1, ... in its config.json"
    elif architecture == "BertForSequenceClassification":
        unsupported = ("whose head is BERT's pooler (dense -> tanh) and a dense layer, which no classifier head here "
                       "computes (the transformers head applies GELU where the pooler applies tanh)")
    elif family == "classification" and config.get("problem_type") == "multi_label_classification":
        unsupported = ("a multi-label classifier (a sigmoid per label), where a classifier here picks one label by "
                       "softmax")
    elif family == "qa" and len(labels) != 2:
        unsupported = f"whose qa_outputs give {len(labels)} logits per token, not a start and an end"
    elif family == "tagging" and (len(labels) < 2 or len(set(labels)) != len(labels)):
        unsupported = f"whose tags {', '.join(labels)} are not two or more distinct tags"
    elif family == "tagging" and config.get("type_vocab_size", 2) < 2:
        unsupported = "with one segment embedding, where the tagger here reads segment 1 (the original's layout)"
    regression = family == "classification" and (config.get("problem_type") == "regression" or len(labels) == 1)
    positions = config.get("max_position_embeddings", 512)
    return TaskHead(directory, architecture, family, None if regression or family == "qa" else tuple(labels),
                    config.get("classifier_dropout"), unsupported,
                    min(hf_checkpoint.read_max_length(directory) or positions, positions))


def with_head_tensors(head, weights, hidden_size):
    """`head` with its dense layers' tensors taken from `weights` ({transformers key: array}); shapes checked."""
    outputs = {"classification": 1 if head.regression else len(head.labels or ()), "qa": 2}.get(
        head.family, len(head.labels or ()))
    prefixes = HEAD_PREFIXES[head.family]
    tensors = {}
    for k, prefix in enumerate(prefixes):
        rows = outputs if k == len(prefixes) - 1 else hidden_size
        for name, shape in ((f"{prefix}.weight", (rows, hidden_size)), (f"{prefix}.bias", (rows,))):
            value = weights.get(name)
            if value is None:
                raise UserError(f"{head.path} lacks {name}; is it a complete {head.architecture}? (save it again "
                                "with save_pretrained)")
            if tuple(value.shape) != shape:
                raise UserError(f"{head.path}: {name} has shape {tuple(value.shape)}, not the {shape} its "
                                "config.json gives; the weights and config.json are of different models")
            tensors[name] = np.asarray(value, np.float32)
    return dataclasses.replace(head, tensors=tensors)


def load_head(head, model, label_scale=1.0):
    """Assigns `head`'s weights to `model`'s head, its outputs in the model's label order.

    Args:
        head: a `TaskHead` with its tensors, which `model` can hold (`TaskHead.mismatch`).
        model: an `ElectraClassifier`, `ElectraTagger` or `ElectraQuestionAnswerer` of the head's family.
        label_scale: a regression's label scale: the model learns scores / label_scale (STS-B: 5).
    """
    family = head.family
    labels = model.tags if family == "tagging" else model.label_names if family == "classification" else None
    order = None if labels is None else head.order(labels)
    layers = _head_layers(model, family)
    for k, (prefix, layer) in enumerate(zip(HEAD_PREFIXES[family], layers)):
        kernel, bias = head.tensors[f"{prefix}.weight"].T, head.tensors[f"{prefix}.bias"]
        if k == len(layers) - 1:
            if order is not None:
                kernel, bias = kernel[:, order], bias[order]
            kernel, bias = kernel / label_scale, bias / label_scale
        layer.kernel.assign(kernel)
        layer.bias.assign(bias)


_NEW_HEAD = "pass new_head=True to fine-tune its encoder under a new head"
_KEEP = {"classification": "leave labels, num_classes and regression unset (or give its own labels)",
         "tagging": "leave tags unset (or give its own tags)"}


def pretrained_arguments(head, family, arguments):
    """`from_pretrained`'s arguments, the head's settings filling the unset ones; a UserError when they do not fit.

    Args:
        head: the `TaskHead` of the directory `from_pretrained` reads.
        family: the task family of the model it builds.
        arguments: its head arguments, None where unset: classifier (`labels`, `num_classes`, `regression`,
            `classifier_head`, `dropout`), tagger (`tags`), question answerer (`qa`).

    Returns:
        The arguments with the head's label names (tags), regression, head option and dropout where unset.

    Example:

    >>> head = TaskHead("hf/sst2", "ElectraForSequenceClassification", "classification", labels=("neg", "pos"))
    >>> arguments = pretrained_arguments(head, "classification", {"labels": None, "regression": None})
    >>> arguments["labels"], arguments["regression"], arguments["classifier_head"]
    (['neg', 'pos'], False, 'transformers')
    """
    from electra_tf.finetuning.qa.config import QAConfig

    arguments = dict(arguments)
    fits = head.unsupported is None and family == head.family
    labels, regression, kind = None, False, None
    if family == "classification":
        if fits:
            arguments["classifier_head"] = arguments.get("classifier_head") or "transformers"
            if arguments.get("regression") is None:
                arguments["regression"] = head.regression
            if not arguments["regression"] and arguments.get("labels") is None and \
                    arguments.get("num_classes") in (None, len(head.labels)):
                arguments["labels"] = list(head.labels)
            if arguments.get("dropout") is None and head.dropout is not None:
                arguments["dropout"] = head.dropout
        regression, kind = bool(arguments.get("regression")), arguments.get("classifier_head")
        labels = arguments.get("labels") or [str(i) for i in range(arguments.get("num_classes") or 2)]
    elif family == "tagging":
        if fits and arguments.get("tags") is None:
            arguments["tags"] = list(head.labels)
        labels = arguments.get("tags")
    else:
        if fits and arguments.get("qa") is None:
            arguments["qa"] = QAConfig(qa_head="linear")
        kind = (arguments.get("qa") or QAConfig()).qa_head
    problem = head.mismatch(family, labels, regression, kind)
    if problem is None:
        return arguments
    sentence, setting = problem
    if setting == "kind" and family == "qa":
        fix = f"give qa=QAConfig(qa_head=\"linear\", ...) to take its head, or {_NEW_HEAD}"
    elif setting == "kind":
        fix = f"leave classifier_head unset to take its head, or {_NEW_HEAD}"
    elif setting in ("regression", "labels"):
        fix = f"{_KEEP[family]} to take its head, or {_NEW_HEAD}"
    else:
        fix = _NEW_HEAD
    raise UserError(f"{sentence}; {fix}")
