"""Importing electra_tf turns on TF's oneDNN kernels unless the user said otherwise.

TF enables them by default only on AVX-512 VNNI/BF16 or AMX CPUs; without them
the demo trained 2.5x slower on an AVX2 machine (bench/RESULTS.md).
"""

import os
import subprocess
import sys

import pytest

PROBE = """
import electra_tf  # first, before TensorFlow
from tensorflow.python.util import _pywrap_util_port
print(_pywrap_util_port.IsMklEnabled())
"""


@pytest.mark.parametrize("setting, expected", [(None, "True"), ("0", "False"), ("1", "True")])
def test_onednn_is_on_unless_the_user_turned_it_off(setting, expected):
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    env.update(TF_CPP_MIN_LOG_LEVEL="3")
    if setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = setting
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == expected
