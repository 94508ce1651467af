"""run_pretraining with its weights poisoned by NaN at a given step: the non-finite-loss stop, end to end.

    python tests/nan_run.py STEP [run_pretraining flags...]

The hook is a LoopOptions field, not a user-facing flag.
"""

import dataclasses
import sys

from absl import app

from electra_tf import run_pretraining
from electra_tf.training import training_loop
from electra_tf.utils import cli

if __name__ == "__main__":
    step = int(sys.argv.pop(1))
    options = training_loop.LoopOptions
    training_loop.LoopOptions = lambda **kwargs: dataclasses.replace(options(**kwargs), inject_nan_at_step=step)
    app.run(cli.run(run_pretraining.main))
