r"""Input-side costs of data preparation: the sentence splitter, and reading each input format.

    .venv/bin/python bench/bench_input.py --workdir /tmp/bench_input

On the demo corpus with each document on one line (10,033 paragraphs of
running text), in CPU seconds of this process (time.process_time; a busy
machine distorts them less than wall time), alternating the candidates
round by round and keeping each one's median:
  * sentence splitting: data_prep.sentences.SentenceSplitter (sentencex,
    what --sentence_splitting uses) beside data_prep.export_corpus's regex
    (the splitter the demo corpus is exported with): MB of text per CPU
    second, sentences found, whether the sentences join back to the text,
    and how many paragraphs the two split identically;
  * reading: MB of text per CPU second through text_input.read_documents
    for the corpus (one sentence per line) as plain text, .gz, .bz2, .xz,
    .zst, and as .parquet (pyarrow, one row per document).
"""

import argparse
import bz2
import gzip
import json
import lzma
import os
import statistics
import time


def _median_rate(megabytes, timings):
    return round(megabytes / statistics.median(timings), 1)


def _splitters(paragraphs, repeats):
    from data_prep import export_corpus, sentences  # pylint: disable=import-outside-toplevel

    splitter = sentences.SentenceSplitter("en")
    candidates = {"sentencex": splitter.split, "export_corpus regex": export_corpus.split_sentences}
    megabytes = sum(len(p.encode()) for p in paragraphs) / 1e6
    timings, outputs = {name: [] for name in candidates}, {}
    for _ in range(repeats):
        for name, split in candidates.items():
            start = time.process_time()
            outputs[name] = [split(p) for p in paragraphs]
            timings[name].append(time.process_time() - start)
    ours, regex = outputs["sentencex"], outputs["export_corpus regex"]
    same = sum([s.strip() for s in a if s.strip()] == b for a, b in zip(ours, regex))
    return {
        "paragraphs": len(paragraphs), "mb": round(megabytes, 3),
        "mb_per_cpu_s": {name: _median_rate(megabytes, t) for name, t in timings.items()},
        "sentences": {name: sum(map(len, out)) for name, out in outputs.items()},
        "sentencex_joins_back": sum("".join(a) == p for a, p in zip(ours, paragraphs)),
        "paragraphs_split_identically": same,
    }


def _readers(corpus_text, workdir, repeats):
    import pyarrow as pa  # pylint: disable=import-outside-toplevel
    import pyarrow.parquet as pq  # pylint: disable=import-outside-toplevel

    from data_prep import input_files, text_input  # pylint: disable=import-outside-toplevel

    try:
        from compression import zstd  # pylint: disable=import-outside-toplevel
    except ImportError:
        from backports import zstd  # pylint: disable=import-outside-toplevel
    data = corpus_text.encode()
    paths = {"text": os.path.join(workdir, "corpus.txt")}
    with open(paths["text"], "wb") as f:
        f.write(data)
    for suffix, compress in ((".gz", gzip.compress), (".bz2", bz2.compress), (".xz", lzma.compress),
                             (".zst", zstd.compress)):
        paths[suffix] = paths["text"] + suffix
        with open(paths[suffix], "wb") as f:
            f.write(compress(data))
    paths["parquet"] = os.path.join(workdir, "corpus.parquet")
    pq.write_table(pa.table({"text": corpus_text.strip().split("\n\n")}), paths["parquet"])
    timings = {name: [] for name in paths}
    for _ in range(repeats):
        for name, path in paths.items():
            files = [input_files.InputFile(path, os.path.getsize(path))]
            start = time.process_time()
            for _ in text_input.read_documents(files):
                pass
            timings[name].append(time.process_time() - start)
    megabytes = len(data) / 1e6
    return {"mb": round(megabytes, 2),
            "file_mb": {name: round(os.path.getsize(p) / 1e6, 2) for name, p in paths.items()},
            "mb_per_cpu_s": {name: _median_rate(megabytes, t) for name, t in timings.items()}}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--workdir", default="/tmp/bench_input")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--copies", type=int, default=4, help="read the corpus repeated this often")
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    from data_prep import export_corpus  # pylint: disable=import-outside-toplevel
    corpus = os.path.join(args.workdir, "demo.txt")
    export_corpus.export_demo_corpus(corpus)
    with open(corpus, encoding="utf-8") as f:
        text = f.read()
    paragraphs = [doc.replace("\n", " ") for doc in text.strip().split("\n\n")]
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    report = {"load_average_1min_before": float(load),
              "splitting": _splitters(paragraphs, args.repeats),
              "reading": _readers(text * args.copies, args.workdir, args.repeats)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
