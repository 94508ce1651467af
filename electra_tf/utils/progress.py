"""The one progress display: `<done>/<total> [=====>    ] <fields>  <rate>  ETA h:mm:ss`."""

import sys
import time


class ProgressBar:
    """One line of progress, for training steps and for data preparation alike.

    On a terminal the line is rewritten in place, at most every `interval`
    seconds. Elsewhere (a log file, CI) each update prints a line of its own,
    or nothing when `tty_only`.

    Args:
        total: the amount of work, in units of `update`'s `done`.
        unit: what `done` counts, printed after the count ("steps", "MB").
        rate_unit: the unit the speed is shown in ("ex/s", "MB/s").
        rate_per_unit: `rate_unit`s per unit of `done` per second (the batch
            size, for steps shown as examples per second).
        count_scale: `done` and `total` are shown divided by this.
        stream: where to write (default: stdout).
        tty_only: print nothing unless `stream` is a terminal.
        interval: least seconds between two redraws on a terminal.
        width: characters of the bar.

    Example:

    >>> bar = ProgressBar(100, "steps", "ex/s", rate_per_unit=32, stream=sys.stdout)
    >>> bar.update(50, ["loss 1.2345"])
    50/100 steps [============>           ]  loss 1.2345
    >>> bar.close()
    """

    def __init__(self, total, unit, rate_unit, rate_per_unit=1.0, count_scale=1, stream=None, tty_only=False,
                 interval=0.0, width=24):
        self.total = max(total, 1)
        self.unit = unit
        self.rate_unit = rate_unit
        self.rate_per_unit = rate_per_unit
        self.count_scale = count_scale
        self.stream = stream or sys.stdout
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.enabled = self.tty or not tty_only
        self.interval = interval
        self.width = width
        self._start = time.monotonic()
        self._last = None  # (time, done) of the previous update
        self._last_draw = None
        self._rate = None

    def elapsed(self):
        """Seconds since the bar was made."""
        return time.monotonic() - self._start

    def _count(self, value):
        if self.count_scale == 1:
            return f"{value:,}"
        return f"{value / self.count_scale:,.1f}"

    def update(self, done, fields=(), force=False):
        """Shows `done` units of work and the caller's `fields` (already formatted strings)."""
        now = time.monotonic()
        if self._last is not None and done > self._last[1] and now > self._last[0]:
            rate = (done - self._last[1]) / (now - self._last[0])
            # Smoothed, so one slow stretch (tracing, a checkpoint) does not swing the ETA.
            self._rate = rate if self._rate is None else 0.7 * self._rate + 0.3 * rate
        self._last = (now, done)
        if not self.enabled:
            return
        if self.tty and not force and self._last_draw is not None and now - self._last_draw < self.interval:
            return
        self._last_draw = now
        filled = min(self.width, int(self.width * done / self.total))
        bar = "=" * filled + (">" if filled < self.width else "") + " " * max(0, self.width - filled - 1)
        parts = [f"{self._count(done)}/{self._count(self.total)} {self.unit} [{bar}]", *fields]
        if self._rate:
            eta = int(max(self.total - done, 0) / self._rate)
            parts.append(f"{self._rate * self.rate_per_unit:,.1f} {self.rate_unit}")
            parts.append(f"ETA {eta // 3600}:{eta // 60 % 60:02d}:{eta % 60:02d}")
        line = "  ".join(parts)
        self.stream.write(("\r" + line) if self.tty else (line + "\n"))
        self.stream.flush()

    def close(self):
        """Ends the line on a terminal."""
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()
