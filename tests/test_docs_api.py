"""The API reference (docs/api.md) documents every public name, each from the module that defines it."""

import os
import re

import electra_tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def documented(markdown):
    """The objects a page renders with mkdocstrings: the path of each `::: path` line."""
    return re.findall(r"^:::\s+([\w.]+)\s*$", markdown, re.MULTILINE)


def test_api_reference_documents_every_public_name():
    with open(os.path.join(ROOT, "docs", "api.md"), encoding="utf-8") as f:
        paths = documented(f.read())
    expected = {f"{getattr(electra_tf, name).__module__}.{name}" for name in electra_tf.__all__}
    assert sorted(expected - set(paths)) == [], "add these to docs/api.md"
    assert sorted(set(paths) - expected) == [], "docs/api.md lists names electra_tf does not export"
    assert len(paths) == len(set(paths)), "docs/api.md lists a name twice"
