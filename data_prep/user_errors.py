"""One-line errors for mistakes the user can fix, instead of tracebacks."""

import sys


class UserError(Exception):
    """A problem with the command line or the inputs; the message says what to do."""


def run_cli(main_fn):
    """Wraps an absl main so a UserError prints one line and exits non-zero."""

    def wrapped(argv):
        try:
            return main_fn(argv)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)

    return wrapped
