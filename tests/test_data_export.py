"""The embedded demo corpus and its export."""

import json

from test_data_helpers import run_cli

from data_prep import export_corpus


def test_demo_corpus_is_complete():
    docs = list(export_corpus.demo_documents())
    assert len(docs) == 10033
    assert all(doc and all(line.strip() == line and line for line in doc)
               for doc in docs)


def test_export_writes_blank_line_separated_documents(tmp_path):
    out = tmp_path / "corpus.txt"
    result = run_cli("data_prep.export_corpus", "--output", out,
                     "--max_documents", 25)
    assert result.returncode == 0, result.stderr
    text = out.read_text(encoding="utf-8")
    blocks = [b for b in text.split("\n\n") if b.strip()]
    expected = list(export_corpus.demo_documents(25))
    assert [b.split("\n") for b in blocks] == expected
    assert text.endswith("\n\n")


def test_sentences_split_at_ends_but_not_at_initials_abbreviations_or_decimals():
    text = ('Arthur C. Clarke wrote it with Dr. Smith in 1968. Its plot cost 3.5 million. '
            'It was called "The Sentinel." (It grew.) Did it? Yes!')
    assert export_corpus.split_sentences(text) == [
        "Arthur C. Clarke wrote it with Dr. Smith in 1968.",
        "Its plot cost 3.5 million.",
        'It was called "The Sentinel."',
        "(It grew.)",
        "Did it?",
        "Yes!",
    ]
    assert export_corpus.split_sentences("no end, lower case. after it") == ["no end, lower case. after it"]


def test_documents_keep_every_word_of_the_packaged_text():
    with open(export_corpus.demo_corpus_path(), encoding="utf-8") as f:
        extracts = [entry["extract"] for entry in json.load(f).values()][:200]
    docs = list(export_corpus.demo_documents(200))
    assert [" ".join(doc).split() for doc in docs] == [e.split() for e in extracts if e.strip()]
    # One sentence per line: far more lines than paragraphs.
    assert sum(map(len, docs)) > 2 * sum(len([line for line in e.split("\n") if line.strip()]) for e in extracts)
