"""What every command-line tool does around its `main`: a quiet start and one exit policy.

Each tool ends with `app.run(cli.run(main))`, and its `main` calls
`start_tensorflow()` once its cheap checks have passed (so a bad flag is
reported in a moment). After absl has parsed the flags, and before anything
imports TensorFlow, they set the environment the tools want (the library
itself never changes it):

- TF's oneDNN kernels on, unless the user chose otherwise. TF enables them
  by default only on CPUs with AVX-512 VNNI/BF16 or AMX; on AVX2 machines
  (AMD Zen 3) the Eigen fallback ran the demo 2.5x slower (bench/RESULTS.md).
- TensorFlow's C++ start-up messages (CUDA probing, oneDNN notices, absl's
  pre-initialisation warning) and its Python warnings about its own
  workings (such as a function traced again for a smaller last batch)
  silenced, unless `--verbosity` was given (`--verbosity=0` shows them, and
  Python INFO logs).

Then it runs `main`, and a `UserError` becomes one line, `error: <message>`,
on stderr and the error's exit status.

The tools define their flags inside `flag_group(title)` blocks, so that
`--helpfull` lists them by purpose rather than by the module that happens
to define them.
"""

import contextlib
import logging as std_logging
import os
import sys

from absl import flags, logging

from electra_tf.utils.errors import UserError


@contextlib.contextmanager
def _stderr_silenced():
    """Points file descriptor 2 at /dev/null: C++ writes there directly, past Python's sys.stderr."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


@contextlib.contextmanager
def flag_group(title, flag_values=flags.FLAGS):
    """Lists the flags defined inside the block under `title` in `--helpfull`.

    absl's `--helpfull` groups flags by the module that defined them and
    sorts the groups by name. A capitalised title sorts before absl's own
    modules (`absl.app`, ...), so the tool's groups come first, in
    alphabetical order. The flags also become key flags of the main module,
    so `--help` lists them too.

    Args:
        title: the group's heading, e.g. `"Data"`.
        flag_values: the `FlagValues` the flags are defined in.

    Example:

    >>> fv = flags.FlagValues()
    >>> with flag_group("Data", fv):
    ...     _ = flags.DEFINE_string("input", None, "Text files.", flag_values=fv)
    >>> [f.name for f in fv.flags_by_module_dict()["Data"]]
    ['input']
    """
    before = set(flag_values)
    yield
    added = [name for name in flag_values if name not in before and flag_values[name].name == name]
    for module_flags in flag_values.flags_by_module_dict().values():
        module_flags[:] = [f for f in module_flags if f.name not in added]
    for name in added:
        flag_values.register_flag_by_module(title, flag_values[name])
        flag_values.register_key_flag_for_module(sys.argv[0], flag_values[name])


def required_flags(*names, flag_values=flags.FLAGS):
    """Raises a one-line `UserError` for the first of `names` that was not given.

    Tools call it before loading TensorFlow, so a forgotten flag is reported
    at once. (absl's own `required=True` prints two lines and a usage hint.)

    Args:
        *names: the flags that must have a value.
        flag_values: the parsed `FlagValues`.

    Example:

    >>> fv = flags.FlagValues()
    >>> _ = flags.DEFINE_string("data_dir", None, "Input.", flag_values=fv)
    >>> fv(["tool"])
    ['tool']
    >>> required_flags("data_dir", flag_values=fv)
    Traceback (most recent call last):
    ...
    electra_tf.utils.errors.UserError: --data_dir is required (see --helpfull)
    """
    for name in names:
        if flag_values[name].value in (None, ""):
            raise UserError(f"--{name} is required (see --helpfull)")


def argv_or_exit(expand, argv=None):
    """`expand(argv)` (default `sys.argv`) for `app.run(..., argv=...)`; a `UserError` exits with one line.

    For rewriting the command line before absl parses it, e.g.
    `electra_tf.configs.expand_argv`, which turns `--config=NAME` into the
    recipe's flags.

    Args:
        expand: a function from the command line to the command line absl parses.
        argv: the command line (default: `sys.argv`).

    Example:

    >>> argv_or_exit(lambda argv: argv + ["--verbosity=0"], ["tool"])
    ['tool', '--verbosity=0']
    """
    try:
        return expand(sys.argv if argv is None else argv)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(e.exit_code)


def verbose():
    """Whether the user asked for log messages with absl's --verbosity."""
    return flags.FLAGS["verbosity"].present and flags.FLAGS.verbosity >= 0


def set_environment():
    """The tools' defaults for TensorFlow's environment variables and the Python log level."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    if not verbose():
        logging.set_verbosity(logging.WARNING)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        std_logging.getLogger("tensorflow").setLevel(std_logging.ERROR)


def start_tensorflow():
    """Loads TensorFlow, quietly unless the user asked for its messages (--verbosity, TF_CPP_MIN_LOG_LEVEL).

    Listing the devices is where TF probes for CUDA (and complains when there
    is none); it does not start TF's runtime, so a tool can still fork.
    Calling it again does nothing.
    """
    if "tensorflow" in sys.modules:
        return
    set_environment()
    quiet = not verbose() and os.environ["TF_CPP_MIN_LOG_LEVEL"] not in ("0", "1")
    with _stderr_silenced() if quiet else contextlib.nullcontext():
        import tensorflow as tf

        tf.config.list_physical_devices()


def run(main, pass_through=False):
    """Wraps an absl `main(argv)`: refuses positional arguments, sets the environment, exits on a UserError.

    Args:
        main: the tool's main function; every setting reaches it as a flag.
        pass_through: accept the arguments after a `--` (for another tool's
            options, e.g. Apache Beam's); `main` gets them as argv[1:].

    Returns:
        The function to pass to `absl.app.run`.

    Example:

    >>> def main(argv):
    ...     raise UserError("--input is required")
    >>> wrapped = run(main)  # app.run(wrapped) would print "error: --input is required" and exit 2
    """

    def wrapped(argv):
        try:
            after_dashes = sys.argv[sys.argv.index("--") + 1:] if pass_through and "--" in sys.argv else []
            positional = argv[1:len(argv) - len(after_dashes)]
            if positional:
                raise UserError(f"unexpected arguments {' '.join(positional)}; every setting is a --flag "
                                "(see --helpfull)")
            set_environment()
            return main(argv)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr, flush=True)
            sys.exit(e.exit_code)

    return wrapped
