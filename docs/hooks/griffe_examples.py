"""Render the docstrings' `Example:` sections as the API reference's example boxes, their doctests as code.

The docstrings follow keras-hub: `Example:`, a blank line, then doctest lines at the docstring's own
indentation (tests/test_docstrings.py runs them). Google style, as griffe reads it, wants a section's body
indented under its title, so without this the doctests would reach Markdown as text: `>>>` as nested
quotes and their outputs (`[[5], ...]`, `d["x"](...)`) as links. Here each example becomes an indented
`Example:` block (an "example" admonition) in which every run of doctest lines is a fenced `pycon` block.
Only the rendering changes; the source docstrings are not touched.
"""

import re

import griffe

# A section title of Google style at the docstring's left margin (`Args:`, `Returns:`, ...).
SECTION = re.compile(r"^[A-Z][A-Za-z ]*:\s*$")


def fence_doctests(lines):
    """`lines` with each run of doctest lines (prompts, continuations, outputs) in a `pycon` fence."""
    out, in_doctest = [], False
    for line in lines:
        starts = line.lstrip().startswith(">>>")
        if starts and not in_doctest:
            out.append("```pycon")
            in_doctest = True
        elif in_doctest and not line.strip():
            out.append("```")
            in_doctest = False
        out.append(line)
    if in_doctest:
        out.append("```")
    return out


def render_examples(text):
    """`text` (a cleaned docstring) with each `Example:` section indented under its title, doctests fenced."""
    lines = text.split("\n")
    out, i = [], 0
    while i < len(lines):
        if lines[i].strip() != "Example:" or lines[i] != lines[i].strip():
            out.append(lines[i])
            i += 1
            continue
        end = i + 1
        while end < len(lines) and not SECTION.match(lines[end]):
            end += 1
        body = lines[i + 1:end]
        while body and not body[0].strip():
            body.pop(0)
        while body and not body[-1].strip():
            body.pop()
        out.append("Example:")
        out += [f"    {line}" if line.strip() else "" for line in fence_doctests(body)]
        if end < len(lines):
            out.append("")
        i = end
    return "\n".join(out)


class DoctestExamples(griffe.Extension):
    """Applies `render_examples` to every docstring griffe reads."""

    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None and "Example:" in obj.docstring.value:
            obj.docstring.value = render_examples(obj.docstring.value)
