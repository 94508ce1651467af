"""One-line errors for mistakes the user can fix, instead of tracebacks."""

import sys


class UserError(ValueError):
    """A problem with the command line or the inputs; the message says what to do.

    A ValueError, so library callers (electra_tf's runner) report it like their own.
    """


def run_cli(main_fn):
    """Wraps an absl main so a UserError prints one line and exits non-zero."""

    def wrapped(argv):
        try:
            return main_fn(argv)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)

    return wrapped
