"""The docstrings' examples run, so they cannot rot; the public API documents its arguments."""

import doctest
import importlib
import os
import pkgutil
import sys
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf

import electra_tf

# The command-line entry points define absl flags on import; their behaviour is tested through the CLI.
ENTRY_POINTS = {"run_pretraining", "run_finetuning", "export", "convert_checkpoint", "demo"}
MODULES = sorted(m.name for m in pkgutil.walk_packages(electra_tf.__path__, "electra_tf.")
                 if m.name.rsplit(".", 1)[-1] not in ENTRY_POINTS)


def _globs():
    return {"np": np, "tf": tf, "keras": keras, "os": os, "sys": sys, "tempfile": tempfile,
            **{name: getattr(electra_tf, name) for name in electra_tf.__all__}}


@pytest.mark.parametrize("name", electra_tf.__all__)
def test_public_api_has_args_and_an_example(name):
    doc = getattr(electra_tf, name).__doc__ or ""
    assert "Args:" in doc, f"{name} has no Args: section"
    assert "Example:" in doc and ">>> " in doc, f"{name} has no Example:"


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name):
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(module, module_name, globs={**vars(module), **_globs()}) if t.examples]
    for test in tests:
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} of {results.attempted} examples failed in {module_name}"
