"""The tools turn on TF's oneDNN kernels unless the user said otherwise; the library changes no environment.

TF enables oneDNN by default only on AVX-512 VNNI/BF16 or AMX CPUs; without it
the demo trained 2.5x slower on an AVX2 machine (bench/RESULTS.md).
"""

import os
import subprocess
import sys

import pytest
from conftest import SUBPROCESS_TIMEOUT

TOOL_START = """
from absl import flags
flags.FLAGS(["tool"])
from electra_tf.utils import cli
cli.start_tensorflow()
from tensorflow.python.util import _pywrap_util_port
print(_pywrap_util_port.IsMklEnabled())
"""

LIBRARY_IMPORT = """
import os
before = dict(os.environ)
import electra_tf
electra_tf.ElectraPretrainer, electra_tf.create_optimizer
changed = sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k))
print(changed)
"""


def _python(code, env):
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                            timeout=SUBPROCESS_TIMEOUT)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("setting, expected", [(None, "True"), ("0", "False"), ("1", "True")])
def test_tools_turn_onednn_on_unless_the_user_turned_it_off(setting, expected):
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = setting
    assert _python(TOOL_START, env) == expected


def test_importing_the_library_changes_no_environment_variable():
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_ENABLE_ONEDNN_OPTS", "KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL")}
    assert _python(LIBRARY_IMPORT, env) == "[]"
