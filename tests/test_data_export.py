"""The embedded demo corpus and its export."""

from data_prep import export_corpus
from test_data_helpers import run_cli


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
