"""The model card, `README.md`, written beside every export: what the model is, what it learnt from, how to load it.

Every export function writes one (`export_pretrainer`, `export_classifier`,
`export_tagger`, `export_answerer`, and convert_checkpoint for Hugging Face
and keras-hub), so every path to an export leaves a card. A card states the
objective and sizes, the vocabulary's size and casing, the training data
(dataset_info.json's summary, or the fine-tuning task and its labels), how
long it trained (steps, examples, wall time, hardware), its final metrics,
and how to load it in TensorFlow, in transformers after convert_checkpoint,
and in keras-hub. A Hugging Face export's card starts with the Hub's YAML
front matter. Figures come from the run's records (training_record.json,
finetuning_config.json); what a record does not hold is said to be unknown.
"""

import os

from electra_tf.utils.atomic import write_text_atomically

CARD_FILE = "README.md"
UNKNOWN = "not recorded"
# The towers' names in transformers, for the Hugging Face card.
HF_CLASSES = {"discriminator": "ElectraForPreTraining", "generator": "ElectraForMaskedLM", "encoder": "ElectraModel"}
OBJECTIVE_TEXT = {
    "electra": "ELECTRA: a small generator fills masked positions and the discriminator learns, for every token, "
               "whether it was replaced (replaced-token detection; Clark et al. 2020)",
    "electra_15": "ELECTRA with replaced-token detection on the masked positions only (the paper's ablation)",
    "all_tokens_mlm": "All-Tokens MLM: predicts every token's identity with a copy mechanism (the paper's ablation)",
    "mlm": "a BERT-style masked language model",
    "replace_mlm": "a masked language model on generator-filled positions (the paper's Replace MLM ablation)",
    "teams": "TEAMS: replaced-token detection plus multi-word selection (Shen et al. 2021)",
    "mc_bert": "MC-BERT: a multi-choice cloze test with a reject option at every token (Xu et al. 2020)",
}


def _number(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _duration(seconds):
    if seconds is None:
        return UNKNOWN
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{seconds:,.0f} s ({hours}:{minutes:02d}:{secs:02d})"


def describe_model(config, lowercase, tower="discriminator"):
    """The card's lines on what the model is: objective, sizes, vocabulary.

    Args:
        config: the `ElectraConfig`.
        lowercase: whether its text is lower-cased (uncased) before tokenizing.
        tower: "discriminator", "encoder" or "generator".

    Example:

    >>> describe_model(ElectraConfig.for_size("small"), True)[1]
    '- Discriminator: 12 layers, hidden size 256, 4 attention heads, feed-forward 1024, embeddings 128'
    """
    objective = OBJECTIVE_TEXT.get(config.objective, config.objective)
    if tower == "generator":
        hidden, heads, intermediate = config.generator_dims
        layers, name = config.tower_layers("generator"), "Generator"
    else:
        hidden, heads, intermediate = config.hidden_size, config.num_heads, config.intermediate_size
        layers, name = config.num_layers, "Discriminator" if tower == "discriminator" else "Encoder"
    casing = "uncased (lower-cased, accents stripped)" if lowercase else "cased"
    return [f"- Pre-training objective: `{config.objective}`, {objective}.",
            f"- {name}: {layers} layers, hidden size {hidden}, {heads} attention heads, feed-forward {intermediate}, "
            f"embeddings {config.embedding_size}",
            f"- Vocabulary: {config.vocab_size:,} WordPiece tokens, {casing}; sequence length "
            f"{config.max_seq_length}"]


def describe_pretraining(record):
    """The card's lines on the pre-training data, its length and final metrics, from training_record.json.

    Args:
        record: `run_state.load_training_record(model_dir)` ({} when none was written), or for a converted
            checkpoint {"source": what it was converted from}.

    Example:

    >>> describe_pretraining({"step": 20, "examples": 160, "wall_seconds": 75.2, "hardware": "AMD EPYC, 2 cores",
    ...                       "train_batch_size": 8, "metrics": {"loss/total": 41.5}, "metrics_step": 20})[7]
    '- Steps: 20 (160 examples of batch 8; planned steps not recorded)'
    """
    if not record.get("step"):
        source = record.get("source")
        return [f"Converted from {source}; how it was trained is not recorded here." if source else
                "No training record: how this model was trained is not recorded."]
    data = record.get("dataset", {})
    files = [os.path.basename(f) for f in data.get("input_files", [])]
    shown = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
    return ["### Training data", "",
            f"- Corpus: {shown or UNKNOWN} ({_number(data.get('input_bytes', UNKNOWN))} bytes, "
            f"{_number(data.get('documents', UNKNOWN))} documents)",
            f"- Examples: {_number(data.get('num_examples', UNKNOWN))} of "
            f"{_number(data.get('max_seq_length', UNKNOWN))} tokens, "
            f"{_number(data.get('tokens_written', UNKNOWN))} tokens in all (dataset_info.json)", "",
            "### Length", "",
            f"- Steps: {_number(record['step'])} ({_number(record.get('examples', UNKNOWN))} examples of "
            f"batch {_number(record.get('train_batch_size', UNKNOWN))}; planned steps "
            f"{_number(record.get('num_train_steps', UNKNOWN))})",
            f"- Wall time: {_duration(record.get('wall_seconds'))}",
            f"- Hardware: {record.get('hardware', UNKNOWN)}", "",
            *metrics_table(record.get("metrics", {}), f"at step {record.get('metrics_step', '?')}")]


def metrics_table(metrics, when):
    """The card's lines on the final metrics: a Markdown table.

    Args:
        metrics: {name: value}.
        when: what the values are of, e.g. "at step 20".

    Example:

    >>> metrics_table({"loss/total": 41.52}, "at step 20")[4]
    '| loss/total | 41.52 |'
    """
    if not metrics:
        return ["Final metrics: not recorded."]
    return [f"### Final metrics ({when})", "", "| metric | value |", "|---|---|",
            *[f"| {name} | {_number(value)} |" for name, value in sorted(metrics.items())]]


def _code(*lines):
    return ["", *[f"    {line}" for line in lines], ""]


def loading_lines(fmt, tower="discriminator", model_dir="<model_dir>", signature_example=None):
    """The card's "How to load" section: TensorFlow, transformers after convert_checkpoint, keras-hub.

    Args:
        fmt: what this directory holds: "savedmodel", "hf" or "keras_hub".
        tower: "discriminator", "encoder" or "generator".
        model_dir: the pre-training run's directory, which convert_checkpoint reads.
        signature_example: the SavedModel call to show (default: the pre-trained `serve_text`).

    Example:

    >>> loading_lines("hf", "discriminator")[5]
    '    model = ElectraForPreTraining.from_pretrained("path/to/this/directory")'
    """
    hf_class = HF_CLASSES[tower]
    call = signature_example or 'model.signatures["serve_text"](tf.constant(["the cat sat on the mat ."]))'
    hf_tower = "discriminator" if tower == "encoder" else tower
    tensorflow = ["TensorFlow (a SavedModel; `tensorflow_text` registers its tokenizer's ops; electra_tf is not "
                  "needed):",
                  *_code("import tensorflow as tf, tensorflow_text", 'model = tf.saved_model.load("path/to/export")',
                         call)]
    transformers = ["transformers, after converting the pre-training run with convert_checkpoint:",
                    *_code(f"python -m electra_tf.convert_checkpoint --model_dir={model_dir} --to_hf=hf_model",
                           f"from transformers import {hf_class}",
                           f'model = {hf_class}.from_pretrained("hf_model/{hf_tower}")')]
    keras_hub = ["keras-hub, after converting the pre-training run (keras-hub's GELU is the tanh approximation, "
                 "this model's the exact one: outputs differ slightly):",
                 *_code(f"python -m electra_tf.convert_checkpoint --model_dir={model_dir} --to_keras_hub=kh_model",
                        "import keras_hub", 'backbone = keras_hub.models.ElectraBackbone.from_preset("kh_model")')]
    if fmt == "hf":
        transformers = ["transformers (this directory):",
                        *_code(f"from transformers import {hf_class}",
                               f'model = {hf_class}.from_pretrained("path/to/this/directory")')]
        tensorflow[1:] = _code(f"python -m electra_tf.export --model_dir={model_dir}",
                               'model = tf.saved_model.load("<model_dir>/export/discriminator")  # after '
                               "import tensorflow_text")
        tensorflow[0] = "TensorFlow: the pre-training run's SavedModel export:"
        order = (transformers, tensorflow, keras_hub)
    elif fmt == "keras_hub":
        keras_hub = ["keras-hub (this directory; ElectraTokenizer loads its vocabulary):",
                     *_code("import keras_hub", 'backbone = keras_hub.models.ElectraBackbone.from_preset("path/to/'
                            'this/directory")', 'tokenizer = keras_hub.models.ElectraTokenizer.from_preset('
                            '"path/to/this/directory")')]
        tensorflow[1:] = _code(f"python -m electra_tf.export --model_dir={model_dir}")
        tensorflow[0] = "TensorFlow: the pre-training run's SavedModel export (tf.saved_model.load):"
        order = (keras_hub, tensorflow, transformers)
    else:
        order = (tensorflow, transformers, keras_hub)
    return ["## How to load", "", *[line for part in order for line in part]]


def _front_matter(values):
    lines = ["---"]
    for key, value in values.items():
        if isinstance(value, list):
            lines += [f"{key}:", *[f"- {item}" for item in value]]
        else:
            lines.append(f"{key}: {value}")
    return [*lines, "---", ""]


# The Hub's pipeline_tag of each model a card describes: a pre-trained tower or a fine-tuned task model.
PIPELINE_TAGS = {"discriminator": "feature-extraction", "encoder": "feature-extraction", "generator": "fill-mask",
                 "classifier": "text-classification", "tagger": "token-classification",
                 "answerer": "question-answering"}


def hf_front_matter(model, license_name, language):
    """The Hub's model-card YAML metadata for a model converted to transformers.

    Args:
        model: a pre-trained tower ("discriminator", "generator") or a fine-tuned task model
            ("classifier", "tagger", "answerer").
        license_name: the Hub's license identifier, e.g. "apache-2.0".
        language: the text's language code, e.g. "en".

    Example:

    >>> hf_front_matter("generator", "apache-2.0", "en")["pipeline_tag"]
    'fill-mask'
    >>> hf_front_matter("tagger", "apache-2.0", "en")["tags"]
    ['electra', 'electra-tf', 'token-classification']
    """
    tag = model if model in ("discriminator", "encoder", "generator") else PIPELINE_TAGS[model]
    return {"license": license_name, "language": language, "library_name": "transformers",
            "tags": ["electra", "electra-tf", tag], "pipeline_tag": PIPELINE_TAGS[model]}


def pretrained_card(config, lowercase, tower, record, fmt="savedmodel", model_dir="<model_dir>", front_matter=None):
    """The card of a pre-trained model: a SavedModel export, a Hugging Face tower or a keras-hub preset.

    Args:
        config: the `ElectraConfig`.
        lowercase: whether the text is lower-cased before tokenizing.
        tower: "discriminator", "encoder" or "generator".
        record: `run_state.load_training_record(model_dir)` ({} when none).
        fmt: "savedmodel", "hf" or "keras_hub".
        model_dir: the run's directory, shown in the loading commands.
        front_matter: the Hub's metadata (`hf_front_matter`), for a Hugging Face export.

    Example:

    >>> card = pretrained_card(ElectraConfig.for_size("tiny"), True, "discriminator", {})
    >>> card.splitlines()[0], "No training record" in card
    ('# ELECTRA discriminator (TensorFlow SavedModel)', True)
    """
    what = {"savedmodel": "TensorFlow SavedModel", "hf": "Hugging Face transformers", "keras_hub": "keras-hub preset"}
    lines = _front_matter(front_matter) if front_matter else []
    lines += [f"# ELECTRA {tower} ({what[fmt]})", "",
              "Pre-trained with electra-tf, the Keras 3 / TensorFlow implementation of ELECTRA (Clark et al., "
              "ICLR 2020).", "", "## Model", "", *describe_model(config, lowercase, tower), "",
              "## Training", "", *describe_pretraining(record), "",
              *loading_lines(fmt, tower, model_dir)]
    return "\n".join(lines) + "\n"


TASK_KINDS = {"classifier": "text classifier", "tagger": "token tagger", "answerer": "extractive question answerer"}
CALLS = {
    "classifier": 'model.signatures["serve_text"](tf.constant(["a gem of a film ."]))  # label, probabilities',
    "tagger": 'model.signatures["serve_text"](tf.constant(["he ran home ."]))  # words, tags',
    "answerer": 'model.signatures["serve_text"](questions=tf.constant(["who sat ?"]), '
                'contexts=tf.constant(["the cat sat ."]))  # answer, score',
}
# transformers' class of each fine-tuned kind, and how to call it.
HF_TASK_CLASSES = {"classifier": "ElectraForSequenceClassification", "tagger": "ElectraForTokenClassification",
                   "answerer": "ElectraForQuestionAnswering"}
HF_CALLS = {
    "classifier": ['from transformers import pipeline',
                   'classify = pipeline("text-classification", model="path/to/this/directory")',
                   'classify("a gem of a film .")'],
    "tagger": ['from transformers import pipeline',
               'tag = pipeline("token-classification", model="path/to/this/directory")',
               'tag("he ran home .")  # a tag on each word\'s first piece'],
    "answerer": ['from transformers import AutoModelForQuestionAnswering, AutoTokenizer',
                 'model = AutoModelForQuestionAnswering.from_pretrained("path/to/this/directory")',
                 'tokenizer = AutoTokenizer.from_pretrained("path/to/this/directory")',
                 'inputs = tokenizer("who sat ?", "the cat sat .", return_tensors="pt")',
                 'outputs = model(**inputs)  # start_logits, end_logits'],
}


def converts_to_transformers(kind, record):
    """None if the fine-tuned model converts to its transformers class, else the option to fine-tune with.

    The original's classification and question-answering heads have no
    counterpart in transformers' classes; the transformers-shaped heads and
    the tagger's head convert exactly.

    Args:
        kind: "classifier", "tagger" or "answerer".
        record: what the fine-tuning run recorded (finetuning_config.json).

    Example:

    >>> converts_to_transformers("classifier", {"hyperparameters": {"classifier_head": "original"}})
    '--classifier_head=transformers'
    >>> converts_to_transformers("tagger", {}) is None
    True
    """
    if kind == "classifier" and record.get("hyperparameters", {}).get("classifier_head", "original") != "transformers":
        return "--classifier_head=transformers"
    if kind == "answerer" and record.get("qa", {}).get("qa_head", "original") != "linear":
        return "--qa_head=linear"
    return None


def _finetuned_loading(kind, record, fmt):
    tensorflow = ["TensorFlow (the SavedModel; `tensorflow_text` registers its tokenizer's ops; electra_tf is not "
                  "needed):",
                  *_code("import tensorflow as tf, tensorflow_text", 'model = tf.saved_model.load("path/to/export")',
                         CALLS[kind])]
    keras_hub = ["keras-hub has no ELECTRA task models: `convert_checkpoint --to_keras_hub` writes the pre-trained "
                 "encoder it was fine-tuned from (`--model_dir=<its pre-training run>`)."]
    if fmt == "hf":
        transformers = [f"transformers (this directory, `{HF_TASK_CLASSES[kind]}`):", *_code(*HF_CALLS[kind])]
        tensorflow = ["TensorFlow: the fine-tuning run's own export (`<output_dir>/export`), or this directory's "
                      "(`python -m electra_tf.export --model_dir=path/to/this/directory`), loads with "
                      "`tf.saved_model.load`."]
        return ["## How to load", "", *transformers, *tensorflow, "", *keras_hub]
    option = converts_to_transformers(kind, record)
    if option is None:
        transformers = [f"transformers, as `{HF_TASK_CLASSES[kind]}` with its head and label names, once converted:",
                        *_code("python -m electra_tf.convert_checkpoint --model_dir=<output_dir> --to_hf=hf_model"),
                        "then:", *_code(*[line.replace("path/to/this/directory", "hf_model")
                                          for line in HF_CALLS[kind]])]
    else:
        transformers = [f"transformers: this head is the original's, which `{HF_TASK_CLASSES[kind]}` cannot hold "
                        f"(fine-tune with `{option}` to convert the whole model with `convert_checkpoint "
                        "--model_dir=<output_dir> --to_hf=hf_model`); the encoder alone converts from its "
                        "pre-training run with `--to_hf`."]
    return ["## How to load", "", *tensorflow, *transformers, "", *keras_hub]


def finetuned_card(kind, config, lowercase, record, labels=None, fmt="savedmodel", front_matter=None):
    """The card of a fine-tuned model: its SavedModel export, or its transformers task model.

    Args:
        kind: "classifier", "tagger" or "answerer".
        config: the `ElectraConfig` of its encoder.
        lowercase: whether the text is lower-cased before tokenizing.
        record: what the fine-tuning run recorded (finetuning_config.json: task, model, train_examples,
            updates, hyperparameters; and dev_metrics, wall_seconds, hardware); {} when none.
        labels: the label (or tag) names in id order; None for regression and question answering.
        fmt: "savedmodel" (the export) or "hf" (a transformers directory written by convert_checkpoint).
        front_matter: the Hub's metadata (`hf_front_matter`), for a transformers directory.

    Example:

    >>> card = finetuned_card("classifier", ElectraConfig.for_size("tiny"), True, {"task": "sst"}, ["bad", "good"])
    >>> card.splitlines()[0], "- Labels (2): bad, good" in card
    ('# ELECTRA text classifier: sst', True)
    """
    task = record.get("task", UNKNOWN)
    hp = record.get("hyperparameters", {})
    what = f" ({HF_TASK_CLASSES[kind]}, Hugging Face transformers)" if fmt == "hf" else ""
    lines = _front_matter(front_matter) if front_matter else []
    lines += [f"# ELECTRA {TASK_KINDS[kind]}: {task}{what}", "",
              "Fine-tuned with electra-tf, the Keras 3 / TensorFlow implementation of ELECTRA (Clark et al., "
              "ICLR 2020).", "", "## Model", "",
              f"- Fine-tuned from: {record.get('model', UNKNOWN)}", *describe_model(config, lowercase, "encoder"),
              f"- Task: `{task}`"]
    if labels is not None:
        lines.append(f"- {'Tags' if kind == 'tagger' else 'Labels'} ({len(labels)}): {', '.join(map(str, labels))}")
    elif kind == "classifier":
        lines.append("- Regression: one score per text")
    lines += ["", "## Training", "",
              f"- Training examples: {_number(record.get('train_examples', UNKNOWN))}",
              f"- Updates: {_number(record.get('updates', UNKNOWN))} (batch "
              f"{_number(hp.get('train_batch_size', UNKNOWN))}, {_number(hp.get('num_train_epochs', UNKNOWN))} "
              f"epochs, learning rate {_number(hp.get('learning_rate', UNKNOWN))})",
              f"- Wall time: {_duration(record.get('wall_seconds'))}",
              f"- Hardware: {record.get('hardware', UNKNOWN)}", "",
              *metrics_table(record.get("dev_metrics", {}), "dev split, the selected epoch"), "",
              *_finetuned_loading(kind, record, fmt)]
    return "\n".join(lines) + "\n"


def write_card(directory, text):
    """Writes `text` as `directory/README.md` (atomically); returns its path.

    Args:
        directory: the export's directory.
        text: the card.

    Example:

    >>> directory = tempfile.mkdtemp()
    >>> os.path.basename(write_card(directory, "# A model\\n"))
    'README.md'
    """
    path = os.path.join(directory, CARD_FILE)
    write_text_atomically(path, text)
    return path
