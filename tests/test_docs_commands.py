"""Every command the documents show runs a tool that exists, with flags that tool defines.

The code blocks (indented or fenced) and inline code of README.md, BUILD.md
and docs/ are searched for `python -m electra_tf...`, `python -m data_prep...`
and `make ...`; each tool's flags come from its absl definitions
(`--helpxml`, which parses the flags and exits before `main` runs), the make
targets from the Makefile.
"""

import functools
import glob
import os
import re
import subprocess
import sys

import pytest
from conftest import SUBPROCESS_TIMEOUT

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCUMENTS = ["README.md", "BUILD.md", *sorted(glob.glob("docs/**/*.md", root_dir=ROOT, recursive=True))]
# absl's special flags are parsed before the others and are not listed by --helpxml.
SPECIAL_FLAGS = {"flagfile", "undefok"}
TOOL = re.compile(r"python -m ((?:electra_tf|data_prep)(?:\.\w+)+)")
MAKE = re.compile(r"(?:^|[;&|]\s*|`)make((?:\s+[\w.-]+)*)")
FLAG = re.compile(r"(?<![\w-])--(\w+)")


def split_code(markdown):
    """(code, prose) of a document: its fenced blocks, indented blocks and inline code spans, and the rest."""
    code, prose, fenced = [], [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced or line.startswith("    ") or line.startswith("\t"):
            code.append(line.strip())
        else:
            code.extend(re.findall(r"`([^`]+)`", line))
            prose.append(re.sub(r"`[^`]*`", "", line))
    return code, prose


def code_of(markdown):
    """The text of a document's code, one command a line."""
    # A trailing backslash continues the command on the next line.
    return "\n".join(split_code(markdown)[0]).replace("\\\n", " ")


def commands(markdown):
    """(tool module, [flag names]) for each `python -m` command, and (`make`, [targets]) for each make command."""
    found = []
    for line in code_of(markdown).splitlines():
        for match in TOOL.finditer(line):
            rest = line[match.end():]
            rest = re.split(r"\s--(?:\s|$)|[;|&]|\s#", rest)[0]  # after a bare `--` come another tool's options
            found.append((match.group(1), FLAG.findall(rest)))
        for match in MAKE.finditer(line):
            targets = [w for w in match.group(1).split() if "=" not in w and not w.startswith("-")]
            found.append(("make", targets[:1]))
    return found


@functools.cache
def tool_flags(module):
    """The flags `python -m module` defines, or None if there is no such tool."""
    result = subprocess.run([sys.executable, "-m", module, "--helpxml"], capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": ROOT}, timeout=SUBPROCESS_TIMEOUT)
    names = re.findall(r"<name>(\w+)</name>", result.stdout)
    return set(names) | SPECIAL_FLAGS if names else None


@functools.cache
def make_targets():
    with open(os.path.join(ROOT, "Makefile")) as f:
        return set(re.findall(r"^([\w.-]+)\s*:(?!=)", f.read(), re.MULTILINE))


def problems(markdown, where):
    """One line per unknown tool, target or flag in `markdown`."""
    found = []
    for tool, names in commands(markdown):
        if tool == "make":
            found += [f"{where}: make {t}: no such target" for t in names if t not in make_targets()]
            continue
        defined = tool_flags(tool)
        if defined is None:
            found.append(f"{where}: python -m {tool}: no such tool")
            continue
        for name in names:
            boolean_off = name.startswith("no") and name[2:] in defined
            if name not in defined and not boolean_off:
                found.append(f"{where}: python -m {tool} --{name}: no such flag")
    return found


def test_the_documents_show_commands():
    shown = [c for doc in DOCUMENTS for c in commands(open(os.path.join(ROOT, doc)).read())]
    assert len({tool for tool, _ in shown}) >= 8, shown


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_documented_command_and_flag_exists(document):
    with open(os.path.join(ROOT, document)) as f:
        assert problems(f.read(), document) == []


def test_a_renamed_flag_or_tool_is_caught():
    good = ("    python -m electra_tf.export --model_dir=runs/small --noexport_generator\n"
            "    make test TEST_PROCESSES=0\n")
    assert problems(good, "doc") == []
    assert problems(good.replace("--model_dir", "--model_directory"), "doc") == [
        "doc: python -m electra_tf.export --model_directory: no such flag"]
    assert problems("Run `python -m electra_tf.exporter --model_dir=x`.", "doc") == [
        "doc: python -m electra_tf.exporter: no such tool"]
    assert problems("```\nmake tests\n```", "doc") == ["doc: make tests: no such target"]
    # A continued line, and another tool's options after a bare `--`, are read as such.
    continued = ("    python -m data_prep.build_pretraining_dataset --runner=beam \\\n"
                 "        --input corpus/ --output_dirr data -- --direct_num_workers=2\n")
    assert problems(continued, "doc") == [
        "doc: python -m data_prep.build_pretraining_dataset --output_dirr: no such flag"]
