"""The layer contract in pyproject.toml (run by `make lint`) catches an import against the layers."""

import os
import shutil
import subprocess
import sys

import pytest
from conftest import SUBPROCESS_TIMEOUT

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINT_IMPORTS = os.path.join(os.path.dirname(sys.executable), "lint-imports")


def _copy(tmp_path):
    for package in ("electra_tf", "data_prep"):
        shutil.copytree(os.path.join(ROOT, package), tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.json", "*.flags"))
    shutil.copy(os.path.join(ROOT, "pyproject.toml"), tmp_path)


def _lint(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    return subprocess.run([LINT_IMPORTS], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=SUBPROCESS_TIMEOUT)


@pytest.mark.parametrize("module,line,broken", [
    ("modeling/dropout.py", "from electra_tf.pretraining import masking",
     "electra_tf.modeling is not allowed to import electra_tf.pretraining"),
    ("serving/tagger_savedmodel.py", "from electra_tf.finetuning.tagging import conll",
     "electra_tf.serving is not allowed to import electra_tf.finetuning"),
    ("text/vocab.py", "import data_prep.build_vocab", "electra_tf.text.vocab -> data_prep.build_vocab"),
])
def test_an_import_against_the_layers_fails_the_lint(tmp_path, module, line, broken):
    _copy(tmp_path)
    assert _lint(tmp_path).returncode == 0, "the unchanged copy must pass"
    with open(tmp_path / "electra_tf" / module, "a") as f:
        f.write(f"\n{line}  # noqa\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert broken in result.stdout
