"""SIGTERM and SIGINT for a long-running tool, handled from its first moment.

A scheduler that preempts a job sends SIGTERM and, after a grace period
(30 s on GCP spot VMs), SIGKILL. What a stop request should do depends on
what the process is doing, so the handler has three modes:

- `EXIT` (from start-up until training begins): nothing needs saving, since
  every file written so far was written atomically. Print one line and exit 0 at once.
- `RECORD` (training): only note the request; the training loop polls
  `received` and stops after the current step, then checkpoints.
- `RAISE` (the final export): raise `Stopped` in the main thread, so the
  atomic writer removes its temporary directory and the previous export stays.

A second signal ends the process at once, as users expect of a second Ctrl-C.
Importing this module loads no TensorFlow.
"""

import contextlib
import os
import signal
import sys

EXIT, RECORD, RAISE = "exit", "record", "raise"
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopped(BaseException):
    """Raised in `RAISE` mode when a stop signal arrives; `name` is the signal's, e.g. "SIGTERM".

    A BaseException, like KeyboardInterrupt, so that library code that
    catches `Exception` (TensorFlow's AutoGraph falls back to unconverted code
    on any) lets it through.
    """

    def __init__(self, name):
        super().__init__(f"stopped by {name}")
        self.name = name


class StopSignals:
    """The process's SIGTERM/SIGINT handler; use the one `install()` returns.

    Args:
        exit_message: printed (with the signal's name) before exiting in `EXIT` mode.

    Example:

    >>> stop = StopSignals("stopped by {signal} before any work; re-run to start")
    >>> with stop.mode(RECORD):
    ...     pass  # a long computation that polls stop.received
    >>> stop.received is None
    True
    >>> stop.uninstall()
    """

    def __init__(self, exit_message):
        self.exit_message = exit_message
        self.received = None
        self._mode = EXIT
        self._previous = {sig: signal.signal(sig, self._handle) for sig in SIGNALS}

    def _handle(self, signum, frame):
        name = signal.Signals(signum).name
        if self.received is not None:
            # The second signal: end now, the way the signal would without a handler.
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.received = name
        if self._mode == EXIT:
            sys.stderr.flush()
            print(self.exit_message.format(signal=name), flush=True)
            # os._exit, not SystemExit: the signal may arrive inside an import or a
            # C++ call, where unwinding could fail; nothing is buffered that matters.
            os._exit(0)
        if self._mode == RAISE:
            raise Stopped(name)

    @contextlib.contextmanager
    def mode(self, mode):
        """Handles signals in `mode` inside the block; a signal already received is acted on at entry."""
        previous, self._mode = self._mode, mode
        try:
            if self.received is not None and mode == RAISE:
                raise Stopped(self.received)
            yield self
        finally:
            self._mode = previous

    def set_mode(self, mode):
        """Switches the mode for the rest of the process (see `mode` for a block)."""
        self._mode = mode

    def reinstall(self):
        """Takes the signals back from a handler installed behind Python's back.

        TensorFlow's multi-worker runtime installs a C++ SIGTERM handler of its
        own (for its preemption notices) when the strategy is created; Python
        then never sees the signal.
        """
        for sig in SIGNALS:
            signal.signal(sig, self._handle)

    def uninstall(self):
        """Puts back the handlers that were there before."""
        global _installed
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        if _installed is self:
            _installed = None


_installed = None


def install(exit_message="stopped by {signal} before training started; nothing needed saving. "
                         "Re-run the same command to continue."):
    """Installs the handler once per process (in `EXIT` mode) and returns it; later calls return the same one."""
    global _installed
    if _installed is None:
        _installed = StopSignals(exit_message)
    return _installed
