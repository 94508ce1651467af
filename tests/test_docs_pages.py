"""The documents' pages: relative links name files that exist, and every guide opens with a command.

`make docs` checks the links between the guides; the link test also covers README.md and BUILD.md,
which the site does not build, and the guides' links to the repository's other files
(bench/RESULTS.md). tests/test_docs_commands.py checks that those commands' tools and flags exist.
"""

import os
import re

import pytest
from test_docs_commands import DOCUMENTS, ROOT, split_code

LINK = re.compile(r"\]\(([^)\s]+)\)")


def prose(markdown):
    """`markdown` without its code: fenced and indented blocks, and inline code spans."""
    return "\n".join(split_code(markdown)[1])


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

# Pages that are not guides: the API reference is generated from the docstrings.
NOT_GUIDES = {"docs/api.md"}


def opening(markdown):
    """The first block after a page's title: its lines, up to the first blank line."""
    lines = markdown.splitlines()
    assert lines and lines[0].startswith("# "), "a page starts with its title"
    block = []
    for line in lines[1:]:
        if line.strip():
            block.append(line)
        elif block:
            break
    return block


def opens_with_a_command(markdown):
    block = opening(markdown)
    commands = [line for line in block if not line.strip().startswith("#")]  # comments may introduce them
    return bool(commands) and all(line.startswith("    ") for line in block)


@pytest.mark.parametrize("guide", [d for d in DOCUMENTS if d.startswith("docs/") and d not in NOT_GUIDES])
def test_every_guide_opens_with_a_command(guide):
    with open(os.path.join(ROOT, guide), encoding="utf-8") as f:
        assert opens_with_a_command(f.read()), f"{guide}: put a command that runs right under the title"


def test_a_guide_that_opens_with_prose_is_caught():
    assert opens_with_a_command("# Guide\n\n    make demo\n\nThen ...\n")
    assert not opens_with_a_command("# Guide\n\nFirst, some words.\n\n    make demo\n")
    assert opens_with_a_command("# Guide\n\n    # the demo\n    make demo\n")
    assert not opens_with_a_command("# Guide\n\n    # a comment, no command\n\n    make demo\n")
