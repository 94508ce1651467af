"""Fine-tuned models out to transformers: each task fine-tuned here a few steps, converted, compared in torch.

Classification (named labels) and STS-B regression with the transformers head, POS tagging, and SQuAD 2.0
with the linear head are fine-tuned in-process on the tiny fixtures of the fine-tuning tests, converted with
convert_checkpoint --to_hf, and loaded by transformers (torch, CPU): logits agree within 1e-4, and the
pipelines give what this project's SavedModel and Python prediction give.
"""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
import torch
from conftest import error_lines, run_module
from safetensors.numpy import load_file
from test_finetuning_data import write_glue
from test_finetuning_qa import CONTEXT, QUESTIONS, squad_document
from test_finetuning_tagging import SENTENCES, write_conll
from transformers import (
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    pipeline,
)

from electra_tf.convert_checkpoint import Options, run
from electra_tf.finetuning import runner, tasks
from electra_tf.finetuning.config import FinetuningConfig, RunOptions
from electra_tf.finetuning.qa.config import QAConfig
from electra_tf.finetuning.tagging import conll
from electra_tf.utils.errors import UserError

TOLERANCE = 1e-4
GOOD = ["a great film", "a lovely movie", "it was good", "very fine and great", "good and lovely"]
BAD = ["a dull film", "an awful movie", "it was boring", "very bad and dull", "boring and awful"]
PROBES = ["a great movie", "an awful film", "it was fine", "the dog ran away and it was not bad"]


def _finetune(data, out, init, run_class=runner.FinetuningRun, qa=None, **hyperparameters):
    settings = dict(max_seq_length=16, train_batch_size=8, eval_batch_size=8, num_train_epochs=1, learning_rate=3e-3)
    config = FinetuningConfig(**{**settings, **hyperparameters})
    runner.run(data, config, RunOptions(output_dir=str(out), init_checkpoint=init, log_every_steps=100, qa=qa),
               run_class)
    return str(out)


def _convert(run_dir, to_hf):
    lines = run(Options(model_dir=run_dir, to_hf=str(to_hf)))
    return str(to_hf), lines


def _torch(features, segments=None):
    return dict(input_ids=torch.tensor(features["input_ids"], dtype=torch.long),
                attention_mask=torch.tensor(features["input_mask"], dtype=torch.long),
                token_type_ids=torch.tensor(features["segment_ids"] if segments is None else segments,
                                            dtype=torch.long))


def _load(auto_class, hf_dir):
    """The converted model, which must hold every weight of its class and nothing else."""
    model, info = auto_class.from_pretrained(hf_dir, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    return model.eval()


def _restored(run_dir):
    from electra_tf.finetuning.hf_task_models import read_finetuned

    return read_finetuned(run_dir).model


@pytest.fixture(scope="module")
def classifier_run(finetuning_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("classifier")
    os.makedirs(root / "reviews")
    for split, rows in {"train": [(t, "pos") for t in GOOD * 2] + [(t, "neg") for t in BAD * 2],
                        "dev": [(t, "pos") for t in GOOD[:2]] + [(t, "neg") for t in BAD[:2]]}.items():
        (root / "reviews" / f"{split}.tsv").write_text("review\tsentiment\n" + "".join(f"{t}\t{y}\n" for t, y in rows))
    data = tasks.read_custom(str(root / "reviews" / "train.tsv"), str(root / "reviews" / "dev.tsv"),
                             columns=tasks.CustomColumns("review", None, "sentiment"))
    run_dir = _finetune(data, root / "run", finetuning_model_dir, classifier_head="transformers", num_train_epochs=2)
    return run_dir, *_convert(run_dir, root / "hf")


@pytest.fixture(scope="module")
def regression_run(finetuning_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("regression")
    data = tasks.read_glue("stsb", write_glue(str(root), "stsb"))
    run_dir = _finetune(data, root / "run", finetuning_model_dir, classifier_head="transformers")
    return run_dir, *_convert(run_dir, root / "hf")


def _assert_hf_card(run_dir, hf_dir, pipeline_tag, expected):
    """The transformers directory's model card: the Hub's metadata, and the run's own figures."""
    card = open(os.path.join(hf_dir, "README.md"), encoding="utf-8").read()
    front = card.split("---\n")[1]
    assert f"pipeline_tag: {pipeline_tag}" in front and "library_name: transformers" in front
    assert expected in card
    record = json.loads(open(os.path.join(run_dir, "export", "finetuning_config.json")).read())
    assert record["dev_metrics"] and all(f"| {name} | {value:.4g} |" in card
                                         for name, value in record["dev_metrics"].items())
    # The run's own export says the whole model converts, and how.
    assert "--model_dir=<output_dir> --to_hf" in open(os.path.join(run_dir, "export", "README.md")).read()


def test_classifier_converts_exactly_with_its_label_names(classifier_run):
    run_dir, hf_dir, lines = classifier_run
    assert lines[-1] == (f"wrote {hf_dir} (ElectraForSequenceClassification, with its tokenizer) for transformers' "
                         'from_pretrained and pipeline("text-classification")')
    config = json.loads(open(os.path.join(hf_dir, "config.json")).read())
    assert config["id2label"] == {"0": "neg", "1": "pos"} and config["label2id"] == {"neg": 0, "pos": 1}
    assert config["problem_type"] == "single_label_classification" and config["num_labels"] == 2
    classifier = _restored(run_dir)
    features = classifier.preprocessor(tf.constant(PROBES))
    ours = classifier(features, training=False).numpy()
    theirs = _load(AutoModelForSequenceClassification, hf_dir)
    with torch.no_grad():
        logits = theirs(**_torch({k: v.numpy() for k, v in features.items()})).logits.numpy()
    np.testing.assert_allclose(ours, logits, atol=TOLERANCE, rtol=0)
    assert np.ptp(ours[:, 1] - ours[:, 0]) > 1e-3  # trained: the probes are told apart, not one constant
    _assert_hf_card(run_dir, hf_dir, "text-classification", "- Labels (2): neg, pos")

    # transformers' pipeline on the converted directory against the run's own SavedModel.
    served = tf.saved_model.load(os.path.join(run_dir, "export")).signatures["serve_text"](tf.constant(PROBES))
    results = pipeline("text-classification", model=hf_dir, top_k=None)(PROBES)
    assert [max(r, key=lambda x: x["score"])["label"] for r in results] == [v.decode() for v in
                                                                            served["label"].numpy()]
    for result, probabilities in zip(results, served["probabilities"].numpy()):
        assert {r["label"]: r["score"] for r in result} == pytest.approx(dict(zip(["neg", "pos"], probabilities)),
                                                                        abs=TOLERANCE)


def test_transformers_head_is_transformers_layout_and_gelu():
    """The head alone, with pre-activations of several units, where the tanh GELU would be 1e-3 off."""
    from transformers import ElectraConfig as HFConfig
    from transformers.models.electra.modeling_electra import ElectraClassificationHead

    from electra_tf.finetuning.classifier import TransformersClassificationHead

    ours = TransformersClassificationHead(hidden_size=16, num_outputs=3, initializer_range=1.0)
    ours.build()
    theirs = ElectraClassificationHead(HFConfig(hidden_size=16, num_labels=3)).eval()
    with torch.no_grad():
        for name in ("dense", "out_proj"):
            layer = getattr(ours, name)
            getattr(theirs, name).weight.copy_(torch.tensor(layer.kernel.numpy().T))
            getattr(theirs, name).bias.copy_(torch.tensor(np.linspace(-1, 1, layer.bias.shape[0], dtype=np.float32)))
            layer.bias.assign(getattr(theirs, name).bias.numpy())
        cls = np.random.default_rng(0).normal(size=(4, 16)).astype(np.float32)
        expected = theirs(torch.tensor(cls)[:, None, :]).numpy()  # transformers reads position 0 of a sequence
    np.testing.assert_allclose(ours(cls, training=False).numpy(), expected, atol=1e-5, rtol=0)


def test_regression_pair_converts_with_its_label_scale(regression_run):
    run_dir, hf_dir, _ = regression_run
    config = json.loads(open(os.path.join(hf_dir, "config.json")).read())
    assert config["problem_type"] == "regression" and config["num_labels"] == 1
    classifier = _restored(run_dir)
    pairs = (["A man plays.", "Cats."], ["A man is playing.", "Cars."])
    features = classifier.preprocessor((tf.constant(pairs[0]), tf.constant(pairs[1])))
    ours = classifier(features, training=False).numpy()
    theirs = _load(AutoModelForSequenceClassification, hf_dir)
    with torch.no_grad():
        logits = theirs(**_torch({k: v.numpy() for k, v in features.items()})).logits.numpy()
    np.testing.assert_allclose(ours * 5.0, logits, atol=TOLERANCE * 5, rtol=0)  # STS-B's scale folded in
    served = tf.saved_model.load(os.path.join(run_dir, "export")).signatures["serve_text"](
        text_a=tf.constant(pairs[0]), text_b=tf.constant(pairs[1]))
    results = pipeline("text-classification", model=hf_dir)([{"text": a, "text_pair": b} for a, b in zip(*pairs)])
    assert [r["score"] for r in results] == pytest.approx(served["score"].numpy().tolist(), abs=5 * TOLERANCE)


@pytest.fixture(scope="module")
def tagger_run(finetuning_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("tagger")
    train = write_conll(root / "train.txt", SENTENCES * 4)
    dev = write_conll(root / "dev.txt", SENTENCES)
    data = conll.read_tagging("tagging", train, dev, tag_column=1)  # POS: tags as they are, no BIOES
    from electra_tf.finetuning.tagging.runner import TaggingRun

    run_dir = _finetune(data, root / "run", finetuning_model_dir, TaggingRun)
    return run_dir, *_convert(run_dir, root / "hf"), data.labels


def test_tagger_converts_exactly_and_tags_as_its_export(tagger_run):
    run_dir, hf_dir, _, tags = tagger_run
    config = json.loads(open(os.path.join(hf_dir, "config.json")).read())
    assert config["architectures"] == ["ElectraForTokenClassification"]
    assert [config["id2label"][str(i)] for i in range(len(tags))] == tags == ["DT", "IN", "NN", "PRP", "RB", "VBD"]
    _assert_hf_card(run_dir, hf_dir, "token-classification", f"- Tags (6): {', '.join(tags)}")
    from electra_tf.finetuning.tagging.features import encode, word_pieces

    tagger = _restored(run_dir)
    sentences = ["the cat sat on the mat", "he left", "a dog went away"]
    p = tagger.preprocessor
    encoded = encode(word_pieces(p, [s.split() for s in sentences]), p.sequence_length, p.cls_id, p.sep_id)
    ours = tagger(encoded.features, training=False).numpy()
    theirs = _load(AutoModelForTokenClassification, hf_dir)
    # The tagger reads segment 1 on every token; transformers' tokenizer gives 0, which the conversion maps to it.
    with torch.no_grad():
        logits = theirs(**_torch(encoded.features, np.zeros_like(encoded.features["segment_ids"]))).logits.numpy()
    real = encoded.features["input_mask"].astype(bool)
    np.testing.assert_allclose(ours[real], logits[real], atol=TOLERANCE, rtol=0)

    served = tf.saved_model.load(os.path.join(run_dir, "export")).signatures["serve_text"](tf.constant(sentences))
    tokens = pipeline("token-classification", model=hf_dir, ignore_labels=[])
    for sentence, entities, served_tags in zip(sentences, tokens(sentences), served["tags"].numpy()):
        first_pieces = [e for e in entities if not e["word"].startswith("##")]  # a word's tag is its first piece's
        assert [e["word"] for e in first_pieces] == sentence.split()
        assert [e["entity"] for e in first_pieces] == [t.decode() for t in served_tags[:len(first_pieces)]]


@pytest.fixture(scope="module")
def qa_run(finetuning_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("qa")
    (root / "train-v2.0.json").write_text(json.dumps(squad_document()), encoding="utf-8")
    (root / "dev-v2.0.json").write_text(json.dumps(squad_document()), encoding="utf-8")
    from electra_tf.finetuning.qa import squad
    from electra_tf.finetuning.qa.runner import QARun

    data = squad.read_squad_task("squad_v2", str(root / "train-v2.0.json"), str(root / "dev-v2.0.json"), None)
    # A beam as wide as the short contexts below: every span is searched, as the reference searches them.
    qa = QAConfig(max_query_length=8, doc_stride=16, qa_head="linear")
    run_dir = _finetune(data, root / "run", finetuning_model_dir, QARun, qa=qa, max_seq_length=40)
    return run_dir, *_convert(run_dir, root / "hf")


def test_linear_qa_head_trains_and_is_scored(qa_run, finetuning_model_dir):
    import keras

    from electra_tf import ElectraQuestionAnswerer

    keras.utils.set_random_seed(0)
    answerer = ElectraQuestionAnswerer.from_pretrained(
        finetuning_model_dir, qa=QAConfig(max_query_length=8, doc_stride=8, qa_head="linear"), sequence_length=24)
    assert answerer.head.__class__.__name__ == "LinearQAHead"
    answerer.compile(optimizer=keras.optimizers.Adam(3e-3))
    answers = [{"text": a, "answer_start": CONTEXT.index(a)} if a else None for _, a in QUESTIONS[:3]]
    history = answerer.fit(([q for q, _ in QUESTIONS[:3]], [CONTEXT] * 3), answers, epochs=4, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]

    run_dir = qa_run[0]
    results = json.loads(open(os.path.join(run_dir, "eval_results.json")).read())
    assert results["task"] == "squad_v2" and results["selected_by"] == "f1"
    for name in ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1", "best_exact", "best_f1"):
        assert 0 <= results[name] <= 100
    record = json.loads(open(os.path.join(run_dir, "finetuning_config.json")).read())
    assert record["qa"]["qa_head"] == "linear" and record["qa"]["na_threshold"] == 0.0
    assert record["qa"]["answerable_weight"] is None
    predictions = json.loads(open(os.path.join(run_dir, "predictions.json")).read())
    null_odds = json.loads(open(os.path.join(run_dir, "null_odds.json")).read())
    for qid, text in predictions.items():  # no answer exactly where the [CLS] span beats the best span
        assert (text == "") == (null_odds[qid] > 0.0)


def _reference_answers(hf_dir, questions, contexts, max_answer_length=30):
    """(best span text, [CLS] span's logits minus the best span's) per question, from transformers alone.

    What transformers' question-answering pipeline computed: starts and ends restricted to [CLS] and the
    context, the best span by start + end logit, the answer cut from the context by the tokenizer's offsets.
    """
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    model = _load(AutoModelForQuestionAnswering, hf_dir)
    answers = []
    for question, context in zip(questions, contexts):
        encoded = tokenizer(question, context, return_offsets_mapping=True, return_tensors="pt")
        offsets = encoded.pop("offset_mapping")[0].tolist()
        in_context = [s == 1 for s in encoded.sequence_ids(0)]
        with torch.no_grad():
            out = model(**encoded)
        start, end = out.start_logits[0].numpy(), out.end_logits[0].numpy()
        spans = [(start[s] + end[e], s, e) for s in range(len(start)) for e in range(s, len(end))
                 if in_context[s] and in_context[e] and e - s + 1 <= max_answer_length]
        score, s, e = max(spans)
        answers.append((context[offsets[s][0]:offsets[e][1]], float(start[0] + end[0] - score)))
    return answers


def test_linear_qa_converts_exactly_and_answers_as_its_export(qa_run):
    run_dir, hf_dir, lines = qa_run
    assert "ElectraForQuestionAnswering" in lines[-1]
    _assert_hf_card(run_dir, hf_dir, "question-answering", "AutoModelForQuestionAnswering.from_pretrained")
    from electra_tf.finetuning.qa.squad import make_example

    answerer = _restored(run_dir)
    examples = [make_example(k, str(k), q, CONTEXT) for k, (q, _) in enumerate(QUESTIONS)]
    windows = answerer.windows(examples, training=False)
    ours = answerer(windows.features, training=False)
    theirs = _load(AutoModelForQuestionAnswering, hf_dir)
    with torch.no_grad():
        out = theirs(**_torch(windows.features))
    # Logits where an answer may start or end ([CLS] and the context); elsewhere the head lowers them by 1000.
    allowed = (windows.features["input_mask"] * windows.features["segment_ids"]).astype(bool)
    allowed[:, 0] = True
    np.testing.assert_allclose(ours["start_logits"].numpy()[allowed], out.start_logits.numpy()[allowed],
                               atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(ours["end_logits"].numpy()[allowed], out.end_logits.numpy()[allowed],
                               atol=TOLERANCE, rtol=0)

    # Contexts that fit one window: the answers of transformers' model, the Python API and the SavedModel agree.
    questions = ["who sat on the mat ?", "who ran away ?", "who left ?", "what was good ?"]
    contexts = ["the cat sat on the mat .", "the dog ran away .", "he left and the dog ran away .",
                "it was very good and the film was not bad ."]
    reference = _reference_answers(hf_dir, questions, contexts)
    best = answerer.answer([make_example(k, str(k), q, c) for k, (q, c) in enumerate(zip(questions, contexts))])
    assert [b["text"] for b in best] == [text for text, _ in reference]
    # One window: the log-probabilities' normalisers cancel, so the null score is the logits' difference.
    assert [b["null_score"] for b in best] == pytest.approx([null for _, null in reference], abs=TOLERANCE)
    served = tf.saved_model.load(os.path.join(run_dir, "export")).signatures["serve_text"](
        questions=tf.constant(questions), contexts=tf.constant(contexts))
    assert [a.decode() for a in served["answer"].numpy()] == ["" if null > 0 else text for text, null in reference]
    assert served["score"].numpy() == pytest.approx([b["score"] for b in best], abs=TOLERANCE)
    assert served["null_score"].numpy() == pytest.approx([b["null_score"] for b in best], abs=TOLERANCE)


def _with_record(run_dir, tmp_path, change):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    record = json.loads((copy / "finetuning_config.json").read_text())
    change(record)
    (copy / "finetuning_config.json").write_text(json.dumps(record))
    return str(copy)


def test_original_heads_do_not_convert(classifier_run, qa_run, tmp_path):
    original_classifier = _with_record(classifier_run[0], tmp_path / "c",
                                       lambda r: r["hyperparameters"].update(classifier_head="original"))
    with pytest.raises(UserError, match="fine-tune with --classifier_head=transformers to convert it"):
        run(Options(model_dir=original_classifier, to_hf=str(tmp_path / "hf")))
    original_qa = _with_record(qa_run[0], tmp_path / "q", lambda r: r["qa"].update(qa_head="original"))
    with pytest.raises(UserError) as raised:
        run(Options(model_dir=original_qa, to_hf=str(tmp_path / "hf")))
    assert str(raised.value) == (
        f"{original_qa} is a question answerer with the original's head (start-conditioned ends and an "
        "answerability classifier), which ElectraForQuestionAnswering (one dense layer for starts and ends) has no "
        "place for; fine-tune with --qa_head=linear to convert it")
    with pytest.raises(UserError, match="--to_keras_hub writes a pre-trained encoder"):
        run(Options(model_dir=classifier_run[0], to_keras_hub=str(tmp_path / "kh")))
    assert not (tmp_path / "hf").exists() and not (tmp_path / "kh").exists()


@pytest.mark.parametrize("case", ["qa_head_on_glue", "answerable_weight_on_linear", "classifier_head_on_tagging"])
def test_head_flags_are_checked(case, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    write_conll(data / "train.txt", SENTENCES)
    write_conll(data / "dev.txt", SENTENCES)
    argv, expected = {
        "qa_head_on_glue": (["--task=sst2", "--qa_head=linear"], "--qa_head is for --task=squad_v1 or squad_v2"),
        "answerable_weight_on_linear": (["--task=squad_v2", "--qa_head=linear", "--answerable_weight=0.5"],
                                        "answerable_weight is for the original QA head"),
        "classifier_head_on_tagging": (["--task=tagging", "--classifier_head=transformers"],
                                       "--classifier_head is for classification tasks"),
    }[case]
    # A process of its own: run_finetuning's flags would clash with run_pretraining's, which other test
    # files define in this one.
    result = run_module("electra_tf.run_finetuning", *argv, f"--data_dir={data}", "--vocab_file=v",
                        f"--output_dir={tmp_path / 'o'}", check=False)
    assert result.returncode == 2 and len(error_lines(result.stderr)) == 1, result.stderr[-2000:]
    assert expected in error_lines(result.stderr)[0]
    assert not (tmp_path / "o").exists()


def test_the_selected_trial_is_converted(classifier_run, tmp_path):
    """With several trials the run's selected one converts (eval_results.json names it); else --checkpoint."""
    trials = _with_record(classifier_run[0], tmp_path, lambda r: r["hyperparameters"].update(num_trials=2))
    results = json.loads(open(os.path.join(trials, "eval_results.json")).read())
    os.remove(os.path.join(trials, "eval_results.json"))
    with pytest.raises(UserError, match="eval_results.json does not say which trial was selected"):
        run(Options(model_dir=trials, to_hf=str(tmp_path / "hf")))
    with pytest.raises(UserError, match="is not a checkpoint"):
        run(Options(model_dir=trials, checkpoint=os.path.join(trials, "checkpoints", "best-9"),
                    to_hf=str(tmp_path / "hf")))
    os.makedirs(os.path.join(trials, "trial_2"))
    for name in ("checkpoints", "trial_state.json"):
        shutil.move(os.path.join(trials, name), os.path.join(trials, "trial_2", name))
    with open(os.path.join(trials, "eval_results.json"), "w") as f:
        json.dump({**results, "predictions_from_trial": 2}, f)
    lines = run(Options(model_dir=trials, to_hf=str(tmp_path / "hf")))
    assert lines[0].startswith(f"read {trials}/trial_2/checkpoints/best-") and lines[0].endswith("labels neg, pos")
    converted = load_file(os.path.join(tmp_path / "hf", "model.safetensors"))
    original = load_file(os.path.join(classifier_run[1], "model.safetensors"))
    assert all(np.array_equal(converted[k], original[k]) for k in original)


@pytest.mark.parametrize("fixture", ["classifier_run", "regression_run", "tagger_run", "qa_run"])
def test_converted_back_gives_the_same_logits_and_names(fixture, request):
    """Here -> transformers -> here: from_pretrained of the converted directory is the run's model again."""
    from electra_tf.finetuning.qa.squad import make_example
    from electra_tf.finetuning.tagging.features import encode, word_pieces

    run_dir, hf_dir = request.getfixturevalue(fixture)[:2]
    ours = _restored(run_dir)
    p = ours.preprocessor
    extra = {"qa": ours.qa} if fixture == "qa_run" else {}
    back = type(ours).from_pretrained(hf_dir, sequence_length=p.sequence_length, **extra)
    scale = 1.0
    if fixture == "classifier_run":
        assert back.labels == ours.labels == ["neg", "pos"] and back.classifier_head == "transformers"
        features = p(tf.constant(PROBES))
    elif fixture == "regression_run":
        assert back.regression and ours.regression
        features = p((tf.constant(["A man plays.", "Cats."]), tf.constant(["A man is playing.", "Cars."])))
        scale = 5.0  # STS-B's label scale went into the transformers model's output layer
    elif fixture == "tagger_run":
        assert back.tags == ours.tags
        features = encode(word_pieces(p, [s.split() for s in ("the cat sat on the mat", "he left")]),
                          p.sequence_length, p.cls_id, p.sep_id).features
    else:
        assert back.qa == ours.qa
        features = ours.windows([make_example(k, str(k), q, CONTEXT) for k, (q, _) in enumerate(QUESTIONS)],
                                training=False).features
    mine, theirs = ours(features, training=False), back(features, training=False)
    for key in (["start_logits", "end_logits"] if fixture == "qa_run" else [None]):
        expected, got = (mine, theirs) if key is None else (mine[key], theirs[key])
        np.testing.assert_allclose(got.numpy(), expected.numpy() * scale, atol=1e-5 * scale, rtol=0)
