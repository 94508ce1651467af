r"""Builds a SQuAD-2.0-format and a CoNLL-format task from the demo corpus, to run the whole fine-tuning path.

Neither is SQuAD nor CoNLL-2000; they prove the path (files -> windows or
word pieces -> training -> official scores -> export) on data at hand.

- QA ("which word was removed?"): a context is a document's first four
  sentences; a question is one of them with a word of 4+ letters replaced by
  "___", answered by that word where it stands in the context. A third of
  the questions take their sentence from another document: no answer.
- Tagging: every sentence of the corpus, words tagged B-CAP/I-CAP for runs
  of capitalised words, B-NUM for words with a digit, else O (IOB2).

    python -m data_prep.export_corpus --output=bench_out/corpus.txt --max_documents=3000
    python bench/demo_qa_tagging_data.py --corpus=bench_out/corpus.txt --output_dir=bench_out/qa_tagging
"""

import argparse
import json
import os
import random
import re


def documents(path):
    with open(path, encoding="utf-8") as f:
        return [block.splitlines() for block in f.read().split("\n\n") if block.strip()]


def qa_task(docs, rng, count):
    questions, k = [], 0
    usable = [d for d in docs if len(d) >= 4]
    for doc in usable:
        if len(questions) >= count:
            break
        context = " ".join(doc[:4])
        impossible = rng.random() < 1 / 3
        source = rng.choice(usable)[:4] if impossible else doc[:4]
        sentence = rng.choice(source)
        candidates = [m for m in re.finditer(r"\b[A-Za-z]{4,}\b", sentence)]
        if not candidates:
            continue
        word = rng.choice(candidates)
        question = sentence[:word.start()] + "___" + sentence[word.end():]
        entry = {"id": f"q{k}", "question": question}
        if impossible:
            if word.group() in context:
                continue
            entry.update(answers=[], is_impossible=True)
        else:
            start = context.index(sentence) + word.start()
            entry.update(answers=[{"text": word.group(), "answer_start": start}], is_impossible=False)
        questions.append({"context": context, "qas": [entry]})
        k += 1
    return {"version": "v2.0", "data": [{"title": "demo", "paragraphs": questions}]}


def tags_of(words):
    tags, last = [], "O"
    for word in words:
        if any(c.isdigit() for c in word):
            tag = "B-NUM"
        elif word[:1].isupper():
            tag = "I-CAP" if last in ("B-CAP", "I-CAP") else "B-CAP"
        else:
            tag = "O"
        tags.append(tag)
        last = tag
    return tags


def conll(sentences):
    lines = []
    for sentence in sentences:
        words = sentence.split()
        lines += [f"{w} {t}" for w, t in zip(words, tags_of(words))] + [""]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--questions", type=int, default=2000)
    parser.add_argument("--sentences", type=int, default=3000)
    args = parser.parse_args()
    rng = random.Random(0)
    docs = documents(args.corpus)
    rng.shuffle(docs)
    cut = len(docs) * 4 // 5
    os.makedirs(os.path.join(args.output_dir, "squad"), exist_ok=True)
    os.makedirs(os.path.join(args.output_dir, "tagging"), exist_ok=True)
    for name, part, count in (("train", docs[:cut], args.questions), ("dev", docs[cut:], args.questions // 5)):
        with open(os.path.join(args.output_dir, "squad", f"{name}-v2.0.json"), "w", encoding="utf-8") as f:
            json.dump(qa_task(part, rng, count), f)
        sentences = [s for d in part for s in d][:args.sentences if name == "train" else args.sentences // 5]
        with open(os.path.join(args.output_dir, "tagging", f"{name}.txt"), "w", encoding="utf-8") as f:
            f.write(conll(sentences))


if __name__ == "__main__":
    main()
