"""The recipes (absl flagfiles) that ship with the package, found by name from any working directory.

`--config=NAME` stands for the recipe's flags, in its place on the command
line, so flags after it override it; a `--flagfile=PATH` that does not exist
relative to the working directory but names a shipped recipe
(`electra_tf/configs/demo.flags`, `configs/demo.flags`, `demo.flags`) reads
that one. Recipes may name other recipes with `--config=NAME`.

Names: `small`, `base`, `large` (the paper's ELECTRA sizes), `quick` (a
small model for a first run on your own few MB of text), `demo` (make demo's),
`demo_finetune`, `teams_small`, `mc_bert_base`; the file names without
`.flags` work too (`electra_small`).
"""

import os

from electra_tf.utils.errors import UserError

DIRECTORY = os.path.dirname(os.path.abspath(__file__))
# The paper's sizes go by their size name as well as by their file name.
ALIASES = {"small": "electra_small", "base": "electra_base", "large": "electra_large"}


def names():
    """The recipe names `--config` accepts, aliases first.

    Example:

    >>> names()[:3], "quick" in names()
    (['small', 'base', 'large'], True)
    """
    files = sorted(name[:-len(".flags")] for name in os.listdir(DIRECTORY) if name.endswith(".flags"))
    return [*ALIASES, *files]


def path(name):
    """The file of the recipe `name`; raises a one-line `UserError` naming the recipes for an unknown one.

    Args:
        name: a recipe name (`small`, `quick`, ...) or file name (`electra_small`, `demo.flags`).

    Example:

    >>> os.path.basename(path("small")), os.path.basename(path("demo.flags"))
    ('electra_small.flags', 'demo.flags')
    """
    stem = ALIASES.get(name, name.removesuffix(".flags"))
    candidate = os.path.join(DIRECTORY, stem + ".flags")
    if os.sep in stem or not os.path.isfile(candidate):
        raise UserError(f"unknown --config {name!r}; choose one of {', '.join(names())}, or pass a flagfile "
                        "with --flagfile=PATH")
    return candidate


def shipped_flagfile(filename):
    """The shipped recipe a `--flagfile` path names, or None: only for a path missing from the working directory.

    Args:
        filename: the `--flagfile` value.

    Example:

    >>> os.path.basename(shipped_flagfile("configs/quick.flags"))
    'quick.flags'
    >>> shipped_flagfile("my_recipe.flags") is None
    True
    """
    if os.path.exists(filename) or not filename.endswith(".flags"):
        return None
    candidate = os.path.join(DIRECTORY, os.path.basename(filename))
    return candidate if os.path.isfile(candidate) else None


def _value(argv, k, name):
    """(value, args consumed) of `--name=value` or `--name value` at argv[k], or (None, 0) for another argument."""
    arg = argv[k]
    for dashes in ("--", "-"):
        if arg.startswith(f"{dashes}{name}="):
            return arg[len(dashes) + len(name) + 1:], 1
        if arg == f"{dashes}{name}":
            if k + 1 >= len(argv):
                raise UserError(f"--{name} needs a value")
            return argv[k + 1], 2
    return None, 0


def _file_args(filename, stack):
    """The flags a flagfile holds, as absl reads it (blank lines and #, // comments skipped), recipes expanded."""
    if filename in stack:
        raise UserError(f"flagfile {filename} includes itself (through {' -> '.join(stack)}); remove the loop")
    try:
        with open(filename, encoding="utf-8") as f:
            lines = [line.strip() for line in f]
    except OSError as e:
        raise UserError(f"cannot read flagfile {filename} ({e.strerror}); check the path, or use --config=NAME "
                        f"for a shipped recipe ({', '.join(names())})") from None
    lines = [line for line in lines if line and not line.startswith(("#", "//"))]
    return _expand(lines, [*stack, filename])


def _expand(args, stack):
    expanded, k = [], 0
    while k < len(args):
        name, used = _value(args, k, "config")
        if used:
            expanded += [f"--config={name}", *_file_args(path(name), stack)]
            k += used
            continue
        filename, used = _value(args, k, "flagfile")
        if used:
            filename = os.path.expanduser(filename)
            expanded += _file_args(shipped_flagfile(filename) or filename, stack)
            k += used
            continue
        expanded.append(args[k])
        k += 1
    return expanded


def expand_argv(argv):
    """`argv` with every `--config` and `--flagfile` replaced by the flags they stand for, in place.

    The flags are read as absl reads a flagfile (one a line; blank lines and
    lines starting with `#` or `//` skipped); `--config=NAME` is kept in front
    of its flags, so the tool can tell which recipe it ran. Arguments after a
    lone `--` are left alone.

    Args:
        argv: the command line, program name first.

    Returns:
        The expanded command line.

    Example:

    >>> expand_argv(["run_pretraining", "--config=quick", "--num_train_steps=10"])[:3]
    ['run_pretraining', '--config=quick', '--model_size=tiny']
    """
    end = argv.index("--") if "--" in argv else len(argv)
    return [argv[0], *_expand(list(argv[1:end]), []), *argv[end:]]
