"""transformers task models in: tiny random transformers models (random heads, a tiny vocabulary) made here.

ElectraForSequenceClassification (named labels, and a regression), ElectraForTokenClassification and
ElectraForQuestionAnswering, saved as transformers 5 saves them (the tokenizer as tokenizer.json alone), and
BERT's token classifier and question answerer (with a vocab.txt), read by from_pretrained with their heads:
logits within 1e-4 of torch's on the same inputs, label names in id order. Then the SavedModels
`python -m electra_tf.export` writes for them, served in a fresh process that imports only tensorflow and
tensorflow_text, against transformers' pipelines; run_finetuning continuing a transformers classifier; and the
one-line errors of the heads that do not come in.
"""

import json
import os
import re
import string
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import torch
from conftest import CLI_ENV, ROOT, SUBPROCESS_TIMEOUT, error_lines, run_module
from transformers import (
    BertConfig,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertTokenizer,
    ElectraConfig,
    ElectraForQuestionAnswering,
    ElectraForSequenceClassification,
    ElectraForTokenClassification,
    pipeline,
)

from electra_tf import ElectraClassifier, ElectraQuestionAnswerer, ElectraTagger
from electra_tf.finetuning import sources
from electra_tf.finetuning.qa.config import QAConfig
from electra_tf.finetuning.qa.squad import make_example
from electra_tf.finetuning.tagging.features import encode, word_pieces
from electra_tf.text.vocab import RESERVED_TOKENS
from electra_tf.utils.errors import UserError

TOLERANCE = 1e-4
WORDS = "a the film movie was great fine dull awful it and not cat sat on mat dog ran he left who what where".split()
LABELS = ["pos", "neg", "mid"]  # id order, not sorted: names must survive in id order, and match by name
TAGS = ["NN", "DT", "VBD", "IN", "O"]
TEXTS = ["a great film", "an awful movie", "the cat sat on the mat", "it was not fine"]
SENTENCES = ["the cat sat on the mat", "he left", "a dog ran awaay"]  # "awaay": pieces, the first one tags
QUESTIONS = ["who sat on the mat ?", "who ran ?", "what was great ?"]
CONTEXTS = ["the cat sat on the mat .", "he left and the dog ran .", "it was a great film and not dull ."]
SIZES = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
             max_position_embeddings=128, initializer_range=0.2, attn_implementation="eager")


@pytest.fixture(scope="module")
def vocab_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    pieces = list(RESERVED_TOKENS) + list(string.ascii_lowercase + "?.,") + ["##" + c for c in string.ascii_lowercase]
    path.write_text("\n".join(dict.fromkeys(pieces + WORDS)) + "\n", encoding="utf-8")
    return str(path)


def _vocab_size(vocab_file):
    return len(open(vocab_file, encoding="utf-8").read().split())


def _save(model, directory, vocab_file):
    """save_pretrained with a random head (wider than transformers' init, so the logits differ), and its tokenizer.

    transformers 5 saves the tokenizer as tokenizer.json only; the BERT directories also get the vocab.txt that
    directories saved by earlier releases hold.
    """
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.startswith(("classifier", "qa_outputs")):
                parameter.normal_(0.0, 0.5)
    model.eval().save_pretrained(directory)
    BertTokenizer(vocab=vocab_file, do_lower_case=True).save_pretrained(directory)
    assert not os.path.exists(os.path.join(directory, "vocab.txt"))
    if model.config.model_type == "bert":
        with open(os.path.join(directory, "vocab.txt"), "w", encoding="utf-8") as f:
            f.write(open(vocab_file, encoding="utf-8").read())
    return model, str(directory)


def _electra(vocab_file, cls, **config):
    torch.manual_seed(0)
    return cls(ElectraConfig(vocab_size=_vocab_size(vocab_file), embedding_size=16, **SIZES, **config))


def _bert(vocab_file, cls, **config):
    torch.manual_seed(1)
    return cls(BertConfig(vocab_size=_vocab_size(vocab_file), **SIZES, **config))


def _named(labels):
    return dict(id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)})


@pytest.fixture(scope="module")
def models(vocab_file, tmp_path_factory):
    """{name: (torch model, its directory)}."""
    root = tmp_path_factory.mktemp("transformers")
    made = {
        "classifier": _electra(vocab_file, ElectraForSequenceClassification, **_named(LABELS)),
        "regression": _electra(vocab_file, ElectraForSequenceClassification, num_labels=1, problem_type="regression"),
        "tagger": _electra(vocab_file, ElectraForTokenClassification, **_named(TAGS)),
        "qa": _electra(vocab_file, ElectraForQuestionAnswering),
        "bert_tagger": _bert(vocab_file, BertForTokenClassification, **_named(TAGS)),
        "bert_qa": _bert(vocab_file, BertForQuestionAnswering),
        "bert_classifier": _bert(vocab_file, BertForSequenceClassification, **_named(LABELS)),
        "multi_label": _electra(vocab_file, ElectraForSequenceClassification, problem_type="multi_label_classification",
                                **_named(LABELS)),
    }
    return {name: _save(model, root / name, vocab_file) for name, model in made.items()}


def _torch(features, segments=None):
    return dict(input_ids=torch.tensor(np.asarray(features["input_ids"]), dtype=torch.long),
                attention_mask=torch.tensor(np.asarray(features["input_mask"]), dtype=torch.long),
                token_type_ids=torch.tensor(np.asarray(features["segment_ids"] if segments is None else segments),
                                            dtype=torch.long))


def test_classifier_comes_in_with_its_head_and_label_names(models):
    theirs, directory = models["classifier"]
    classifier = ElectraClassifier.from_pretrained(directory, sequence_length=32)
    assert classifier.labels == LABELS and classifier.classifier_head == "transformers"
    features = {k: v.numpy() for k, v in classifier.preprocessor(tf.constant(TEXTS)).items()}
    ours = classifier(features, training=False).numpy()
    with torch.no_grad():
        logits = theirs(**_torch(features)).logits.numpy()
    np.testing.assert_allclose(ours, logits, atol=TOLERANCE, rtol=0)
    assert np.ptp(ours) > 1.0  # the random head tells the texts and classes apart
    # Labels given in another order are matched by name: the logits follow them.
    sorted_labels = ElectraClassifier.from_pretrained(directory, sequence_length=32, labels=sorted(LABELS))
    order = [LABELS.index(label) for label in sorted(LABELS)]
    np.testing.assert_allclose(sorted_labels(features, training=False).numpy(), logits[:, order], atol=TOLERANCE,
                               rtol=0)
    assert [r["label"] for r in sorted_labels.classify(TEXTS)] == [LABELS[i] for i in logits.argmax(1)]


def test_regression_comes_in_with_scale_one(models):
    theirs, directory = models["regression"]
    scorer = ElectraClassifier.from_pretrained(directory, sequence_length=32)
    assert scorer.regression and scorer.num_classes == 1 and scorer.labels is None
    pairs = (["a great film", "he left"], ["a fine movie", "the dog ran"])
    features = {k: v.numpy() for k, v in scorer.preprocessor((tf.constant(pairs[0]), tf.constant(pairs[1]))).items()}
    with torch.no_grad():
        logits = theirs(**_torch(features)).logits.numpy()
    np.testing.assert_allclose(scorer(features, training=False).numpy(), logits, atol=TOLERANCE, rtol=0)
    assert [r["score"] for r in scorer.classify(pairs)] == pytest.approx(logits[:, 0].tolist(), abs=TOLERANCE)
    # run_finetuning continuing it on STS-B trains on scores / 5: the scale comes out of the output layer.
    sources.resolve(directory).load_weights(scorer, label_scale=5.0)
    np.testing.assert_allclose(scorer(features, training=False).numpy() * 5.0, logits, atol=5 * TOLERANCE, rtol=0)


@pytest.mark.parametrize("name", ["tagger", "bert_tagger"])
def test_tagger_comes_in_with_its_tags(models, name):
    theirs, directory = models[name]
    tagger = ElectraTagger.from_pretrained(directory, sequence_length=32)
    assert tagger.tags == TAGS
    p = tagger.preprocessor
    encoded = encode(word_pieces(p, [s.split() for s in SENTENCES]), p.sequence_length, p.cls_id, p.sep_id)
    ours = tagger(encoded.features, training=False).numpy()
    # The tagger reads segment 1 on every token, transformers' tokenizer gives 0: the rows were swapped back.
    assert encoded.features["segment_ids"][:, 1].all()
    with torch.no_grad():
        logits = theirs(**_torch(encoded.features, np.zeros_like(encoded.features["segment_ids"]))).logits.numpy()
    real = encoded.features["input_mask"].astype(bool)
    np.testing.assert_allclose(ours[real], logits[real], atol=TOLERANCE, rtol=0)


def _qa_features(answerer):
    examples = [make_example(k, str(k), q, c) for k, (q, c) in enumerate(zip(QUESTIONS, CONTEXTS))]
    features = answerer.windows(examples, training=False).features
    allowed = (features["input_mask"] * features["segment_ids"]).astype(bool)
    allowed[:, 0] = True  # [CLS] and the context: elsewhere the head lowers the logits by 1000
    return examples, features, allowed


@pytest.mark.parametrize("name", ["qa", "bert_qa"])
def test_question_answerer_comes_in_with_the_linear_head(models, name):
    theirs, directory = models[name]
    answerer = ElectraQuestionAnswerer.from_pretrained(directory, sequence_length=32)
    assert answerer.qa.qa_head == "linear" and answerer.head.__class__.__name__ == "LinearQAHead"
    _, features, allowed = _qa_features(answerer)
    ours = answerer(features, training=False)
    with torch.no_grad():
        out = theirs(**_torch(features))
    for key in ("start_logits", "end_logits"):
        np.testing.assert_allclose(ours[key].numpy()[allowed], getattr(out, key).numpy()[allowed], atol=TOLERANCE,
                                   rtol=0)


PROBE = """
import json, sys
import tensorflow as tf, tensorflow_text  # noqa: F401  (the tokenizer's ops)
results = []
for export_dir, inputs in json.loads(sys.argv[1]):
    out = tf.saved_model.load(export_dir).signatures["serve_text"](**{k: tf.constant(v) for k, v in inputs.items()})
    results.append({k: (v.numpy().astype(str) if v.dtype == tf.string else v.numpy()).tolist() for k, v in out.items()})
print(json.dumps({"imported": sorted(m for m in ("electra_tf", "torch", "transformers") if m in sys.modules),
                  "results": results}))
"""


def _serve(jobs, cwd):
    """serve_text of each (export_dir, inputs) in one process that imports only tensorflow and tensorflow_text."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", PROBE, json.dumps(jobs)], capture_output=True, text=True,
                            timeout=600, cwd=str(cwd), env={**env, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-2000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert served["imported"] == []
    return served["results"]


def test_exports_serve_as_transformers_pipelines_in_a_fresh_process(models, tmp_path):
    from test_convert_finetuned import _reference_answers

    from electra_tf.export import export_task_model

    exports = {name: str(tmp_path / name) for name in ("classifier", "tagger", "qa")}
    # The command line for the classifier; the same function in this process for the others.
    result = run_module("electra_tf.export", f"--model_dir={models['classifier'][1]}",
                        f"--export_dir={exports['classifier']}", "--max_seq_length=32")
    assert result.stdout.strip().endswith(f"to {exports['classifier']}: serve_text takes text")
    assert "labels pos, neg, mid; 32 tokens" in result.stdout
    export_task_model(sources.task_head(models["tagger"][1]), exports["tagger"], 32)
    qa_line = export_task_model(sources.task_head(models["qa"][1]), exports["qa"], no_answer=True)
    assert "128 tokens" in qa_line  # the tokenizer sets no limit: max_position_embeddings
    classified, tagged, answered = _serve([(exports["classifier"], {"text": TEXTS}),
                                           (exports["tagger"], {"text": SENTENCES}),
                                           (exports["qa"], {"questions": QUESTIONS, "contexts": CONTEXTS})], tmp_path)

    expected = pipeline("text-classification", model=models["classifier"][1], top_k=None)(TEXTS)
    assert classified["label"] == [max(r, key=lambda x: x["score"])["label"] for r in expected]
    for result, probabilities in zip(expected, classified["probabilities"]):
        assert dict(zip(LABELS, probabilities)) == pytest.approx({r["label"]: r["score"] for r in result},
                                                                 abs=TOLERANCE)

    tokens = pipeline("token-classification", model=models["tagger"][1], ignore_labels=[])(SENTENCES)
    for sentence, entities, served_tags in zip(SENTENCES, tokens, tagged["tags"]):
        words = []  # (word, the tag of its first piece: the word's tag)
        for e in entities:
            if e["word"].startswith("##"):
                words[-1] = (words[-1][0] + e["word"][2:], words[-1][1])
            else:
                words.append((e["word"], e["entity"]))
        assert [w for w, _ in words] == sentence.split()
        assert [t for _, t in words] == served_tags[:len(words)]
    assert any(e["word"].startswith("##") for e in tokens[2])  # a word in pieces was among them

    reference = _reference_answers(models["qa"][1], QUESTIONS, CONTEXTS)
    assert answered["answer"] == ["" if null > 0 else text for text, null in reference]
    assert answered["null_score"] == pytest.approx([null for _, null in reference], abs=TOLERANCE)
    assert any(text for text in answered["answer"])  # not all "no answer": the spans were compared too
    assert [a for a in answered["answer"] if a] == [text for text, null in reference if null <= 0]


def test_heads_that_do_not_come_in_are_one_line_errors(models, tmp_path):
    from electra_tf.export import export_task_model

    bert = models["bert_classifier"][1]
    with pytest.raises(UserError) as raised:
        ElectraClassifier.from_pretrained(bert, sequence_length=32)
    assert str(raised.value) == (
        f"{bert} is a BertForSequenceClassification, whose head is BERT's pooler (dense -> tanh) and a dense layer, "
        "which no classifier head here computes (the transformers head applies GELU where the pooler applies tanh); "
        "pass new_head=True to fine-tune its encoder under a new head")
    with pytest.raises(UserError, match=r"it cannot be served as it is: .* --init_checkpoint=.* --new_head\)$"):
        export_task_model(sources.task_head(bert), str(tmp_path / "bert"))
    result = run_module("electra_tf.export", f"--model_dir={models['tagger'][1]}", "--pair", check=False)
    assert result.returncode == 2 and error_lines(result.stderr) == [
        f"error: --pair is for a sequence classifier; {models['tagger'][1]} is ElectraForTokenClassification"]
    encoder_only = ElectraClassifier.from_pretrained(bert, sequence_length=32, new_head=True, labels=["x", "y"])
    assert encoder_only.classifier_head == "original" and encoder_only.labels == ["x", "y"]
    with pytest.raises(UserError, match="a multi-label classifier .* picks one label by softmax; pass new_head=True"):
        ElectraClassifier.from_pretrained(models["multi_label"][1], sequence_length=32)

    classifier, tagger, qa = models["classifier"][1], models["tagger"][1], models["qa"][1]
    cases = [
        (lambda: ElectraClassifier.from_pretrained(classifier, labels=["pos", "neg"]),
         f"{classifier} holds an ElectraForSequenceClassification head for labels pos, neg, mid, not labels pos, neg; "
         "leave labels, num_classes and regression unset (or give its own labels) to take its head, or pass "
         "new_head=True to fine-tune its encoder under a new head"),
        (lambda: ElectraClassifier.from_pretrained(classifier, classifier_head="original"),
         "not the original's one dense layer; leave classifier_head unset to take its head, or pass new_head=True"),
        (lambda: ElectraClassifier.from_pretrained(classifier, regression=True), "mid, not a regression; leave labels"),
        (lambda: ElectraTagger.from_pretrained(classifier), "pos, neg, mid, which an ElectraTagger cannot hold; pass"),
        (lambda: ElectraTagger.from_pretrained(tagger, tags=["NN", "DT"]), "for tags NN, DT, VBD, IN, O, not tags"),
        (lambda: ElectraQuestionAnswerer.from_pretrained(qa, qa=QAConfig(doc_stride=8)),
         'not the original\'s .*; give qa=QAConfig\\(qa_head="linear", ...\\) to take its head, or pass new_head'),
    ]
    for call, expected in cases:
        with pytest.raises(UserError) as raised:
            call()
        message = str(raised.value)
        assert "\n" not in message and (message == expected or re.search(expected, message)), message


def _reviews(root, labels):
    texts = {"pos": ["a great film", "a fine movie"], "neg": ["an awful film", "a dull movie"],
             "mid": ["it was fine and dull", "not great"], "other": ["the cat sat", "he left"]}
    rows = [(t, label) for label in labels for t in texts[label]]
    for split in ("train", "dev"):
        (root / f"{split}.tsv").write_text("review\tsentiment\n" + "".join(f"{t}\t{y}\n" for t, y in rows * 2))
    from electra_tf.finetuning import tasks

    return tasks.read_custom(str(root / "train.tsv"), str(root / "dev.tsv"),
                             columns=tasks.CustomColumns("review", None, "sentiment"))


# Prints the head each invocation of run_finetuning continues with: a classifier directory, a QA directory, and
# the classifier directory under --new_head.
_HEAD_CHOICES = """
import json, sys
from electra_tf import run_finetuning
classifier, qa = sys.argv[1:]
run_finetuning.define_flags()
flags = run_finetuning.FLAGS
choices = {}
for name, argv, option in (
        ("classifier", [f"--init_checkpoint={classifier}", "--train_file=t.tsv", "--dev_file=d.tsv"],
         "classifier_head"),
        ("qa", [f"--init_checkpoint={qa}", "--task=squad_v2"], "qa_head"),
        ("new_head", [f"--init_checkpoint={classifier}", "--new_head"], "classifier_head")):
    flags.unparse_flags()
    flags(["run_finetuning", *argv, "--output_dir=o"])
    values = {option: flags[option].value}
    run_finetuning._continue_task_head(values, values)
    choices[name] = values[option]
print(json.dumps(choices))
"""


def test_run_finetuning_continues_a_transformers_classifier(models, tmp_path, capsys):
    """transformers -> run_finetuning (the head continued; a learning rate too small to move it) -> transformers."""
    from electra_tf.convert_checkpoint import Options, run
    from electra_tf.finetuning import runner
    from electra_tf.finetuning.config import FinetuningConfig, RunOptions

    theirs, directory = models["classifier"]
    data = _reviews(tmp_path, LABELS)
    assert data.labels == sorted(LABELS)  # the run's label ids are not the directory's
    # A fresh process: another test may have defined run_pretraining's flags (its --data_dir) in this one.
    heads = json.loads(subprocess.run([sys.executable, "-c", _HEAD_CHOICES, directory, models["qa"][1]],
                                      cwd=ROOT, env=CLI_ENV, capture_output=True, text=True,
                                      check=True, timeout=SUBPROCESS_TIMEOUT).stdout)
    assert heads == {"classifier": "transformers",  # the directory's head, with no --classifier_head
                     "qa": "linear",
                     "new_head": "original"}  # --new_head: the flags' defaults

    config = FinetuningConfig(max_seq_length=32, train_batch_size=8, num_train_epochs=1, learning_rate=1e-12,
                              classifier_head="transformers")
    options = RunOptions(output_dir=str(tmp_path / "run"), init_checkpoint=directory, export=False,
                         pretrained=sources.resolve(directory))
    runner.run(data, config, options)
    assert "with its ElectraForSequenceClassification head for labels pos, neg, mid" in capsys.readouterr().out
    run(Options(model_dir=str(tmp_path / "run"), checkpoint=str(tmp_path / "run" / "checkpoints" / "best-1"),
                to_hf=str(tmp_path / "hf")))
    back = ElectraForSequenceClassification.from_pretrained(str(tmp_path / "hf")).eval()
    assert back.config.id2label == dict(enumerate(sorted(LABELS)))
    classifier = ElectraClassifier.from_pretrained(directory, sequence_length=32)
    features = {k: v.numpy() for k, v in classifier.preprocessor(tf.constant(TEXTS)).items()}
    with torch.no_grad():
        before, after = theirs(**_torch(features)).logits.numpy(), back(**_torch(features)).logits.numpy()
    np.testing.assert_allclose(after, before[:, [LABELS.index(label) for label in sorted(LABELS)]], atol=TOLERANCE,
                               rtol=0)

    # Another task's labels need --new_head, which fine-tunes the encoder under a new head.
    other = _reviews(tmp_path, ["pos", "other"])
    with pytest.raises(UserError, match=r"not labels other, pos; give --new_head to fine-tune its encoder under a new "
                                        r"head for this task$"):
        runner.run(other, config, RunOptions(output_dir=str(tmp_path / "other"), init_checkpoint=directory,
                                             pretrained=options.pretrained))
    assert not (tmp_path / "other").exists()
    fresh = runner.resolve_model(RunOptions(output_dir="o", init_checkpoint=directory, pretrained=options.pretrained,
                                            new_head=True), config)
    assert fresh.pretrained.head is None and fresh.description.endswith(
        "its ElectraForSequenceClassification head dropped (--new_head)")
