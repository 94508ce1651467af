"""Every command the documents show runs a tool that exists, with flags that tool defines.

The code blocks (indented or fenced) and inline code of README.md, BUILD.md
and docs/ are searched for `python -m electra_tf...`, `python -m data_prep...`,
`python bench/....py` and `make ...`; each tool's flags come from its absl
definitions (`--helpxml`, which parses the flags and exits before `main` runs)
or, for the benchmarks, from argparse's `--help`, the make targets from the
Makefile. A flag named on its own in inline code (`--new_head`) must be a flag
of one of the tools the documents run.
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
TOOL = re.compile(r"python3? (?:-m ((?:electra_tf|data_prep)(?:\.\w+)+)|(bench/\w+\.py))")
MAKE = re.compile(r"(?:^|[;&|]\s*|`)make((?:\s+[\w.-]+)*)")
FLAG = re.compile(r"(?<![\w-])--(\w+)")
# Inline code that begins with a flag: `--new_head`, `--num_trials=5`.
LONE_FLAG = re.compile(r"^--(\w+)(?:[= ]|$)")
# The options of Apache Beam's runners, which build_pretraining_dataset passes on after a bare `--`.
BEAM_OPTIONS = {"sdk_container_image", "environment_config", "environment_type", "extra_package"}
# Release notes name flags that are gone.
HISTORY = {"docs/release-notes.md"}


def split_code(markdown):
    """(code, prose, inline) of a document: its fenced blocks, indented blocks and inline code spans; the rest; and
    the inline code spans alone."""
    code, prose, inline, fenced = [], [], [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced or line.startswith("    ") or line.startswith("\t"):
            code.append(line.strip())
        else:
            spans = re.findall(r"`([^`]+)`", line)
            code.extend(spans)
            inline.extend(spans)
            prose.append(re.sub(r"`[^`]*`", "", line))
    return code, prose, inline


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
            found.append((match.group(1) or match.group(2), FLAG.findall(rest)))
        for match in MAKE.finditer(line):
            targets = [w for w in match.group(1).split() if "=" not in w and not w.startswith("-")]
            found.append(("make", targets[:1]))
    return found


@functools.cache
def tool_flags(tool):
    """The flags `python -m tool` (or `python tool`, a benchmark script) defines, or None if there is no such tool."""
    script = tool.endswith(".py")
    if script and not os.path.isfile(os.path.join(ROOT, tool)):
        return None
    command = [sys.executable, tool, "--help"] if script else [sys.executable, "-m", tool, "--helpxml"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT},
                            timeout=SUBPROCESS_TIMEOUT)
    if script:
        return set(FLAG.findall(result.stdout)) if result.returncode == 0 else None
    names = re.findall(r"<name>(\w+)</name>", result.stdout)
    return set(names) | SPECIAL_FLAGS if names else None


def documented_tools():
    """Every tool a command of the documents runs."""
    return {tool for doc in DOCUMENTS for tool, _ in commands(open(os.path.join(ROOT, doc)).read())
            if tool != "make"}


@functools.cache
def all_flags():
    """The flags of every tool the documents run."""
    return set().union(*(tool_flags(tool) or set() for tool in documented_tools()))


def is_flag(name, defined):
    return name in defined or (name.startswith("no") and name[2:] in defined)  # --noexport: a boolean's off


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
        shown = f"python {tool}" if tool.endswith(".py") else f"python -m {tool}"
        found += [f"{where}: {shown} --{name}: no such flag" for name in names if not is_flag(name, defined)]
    if where not in HISTORY:
        lone = {name for code in split_code(markdown)[2] for name in LONE_FLAG.findall(code)}
        found += [f"{where}: --{name}: no tool has this flag" for name in sorted(lone)
                  if not is_flag(name, all_flags()) and name not in BEAM_OPTIONS]
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
    assert problems("    python bench/bench_train_step.py --compare --rounds 2\n", "doc") == []
    assert problems("    python bench/bench_train_step.py --compares\n", "doc") == [
        "doc: python bench/bench_train_step.py --compares: no such flag"]
    # A flag named alone in the text, as tables and sentences do.
    assert problems("| `--new_head` | `--noexport` | `--num_trials=5` |", "doc") == []
    assert problems("| `--fresh_head` |", "doc") == ["doc: --fresh_head: no tool has this flag"]
    # A continued line, and another tool's options after a bare `--`, are read as such.
    continued = ("    python -m data_prep.build_pretraining_dataset --runner=beam \\\n"
                 "        --input corpus/ --output_dirr data -- --direct_num_workers=2\n")
    assert problems(continued, "doc") == [
        "doc: python -m data_prep.build_pretraining_dataset --output_dirr: no such flag"]
