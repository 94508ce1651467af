"""Relative links in README.md, BUILD.md and docs/ name files that exist.

`make docs` checks the links between the guides; this also covers README.md and BUILD.md, which the
site does not build, and the guides' links to the repository's other files (bench/RESULTS.md).
"""

import glob
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCUMENTS = ["README.md", "BUILD.md", *sorted(glob.glob("docs/**/*.md", root_dir=ROOT, recursive=True))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def prose(markdown):
    """`markdown` without its code: fenced and indented blocks, and inline code spans."""
    lines, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and not line.startswith("    "):
            lines.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(lines)


def broken_links(markdown, where):
    """The relative links of `markdown` (a document at `where`, relative to ROOT) whose file is missing."""
    broken = []
    for target in LINK.findall(prose(markdown)):
        path = target.split("#", 1)[0]
        if not path or re.match(r"\w+:", path):
            continue  # an anchor on the same page, or a URL
        if not os.path.exists(os.path.join(ROOT, os.path.dirname(where), path)):
            broken.append(target)
    return broken


@pytest.mark.parametrize("document", DOCUMENTS)
def test_relative_links_name_existing_files(document):
    with open(os.path.join(ROOT, document), encoding="utf-8") as f:
        assert broken_links(f.read(), document) == []


def test_a_broken_link_is_caught():
    text = "See [data](data.md), [results](../bench/RESULTS.md#memory) and `[x](nowhere.md)`.\n"
    assert broken_links(text, "docs/index.md") == []
    assert broken_links(text.replace("data.md", "dat.md"), "docs/index.md") == ["dat.md"]
    assert broken_links("[a](https://example.org) [b](#top) [c](docs/api.md)", "README.md") == []
