"""The one error type for mistakes a user can fix: its message says what is wrong and what to do."""

# Exit statuses of the command-line tools (see electra_tf.utils.cli).
EXIT_USAGE = 2  # a bad flag or input, found before any work
EXIT_DATA = 1  # the input turned out broken during the run (a corrupt shard); what was written is kept
EXIT_NON_FINITE = 3  # training diverged; the last good checkpoint is kept


class UserError(ValueError):
    """A problem with the command line or the inputs, reported as one line instead of a traceback.

    A `ValueError`, so library callers can catch it like their own argument errors.

    Args:
        message: one line: what is wrong; what to do about it.
        exit_code: the status a command-line tool exits with when it stops on this error.

    Example:

    >>> error = UserError("--data_dir runs/x is not a directory; build the data first")
    >>> error.exit_code
    2
    """

    def __init__(self, message, exit_code=EXIT_USAGE):
        super().__init__(message)
        self.exit_code = exit_code
