"""A one-line progress display on stderr (documents, MB/s, examples)."""

import sys
import time


class Progress:
    """Redraws at most every `interval` seconds; silent unless stderr is a TTY."""

    def __init__(self, total_bytes, enabled=True, interval=0.25, stream=None):
        self._stream = stream or sys.stderr
        self._enabled = enabled and self._stream.isatty()
        self._total = max(total_bytes, 1)
        self._interval = interval
        self._start = time.monotonic()
        self._last_draw = 0.0

    def elapsed(self):
        return time.monotonic() - self._start

    def update(self, documents, bytes_read, examples, force=False):
        now = time.monotonic()
        if not self._enabled or (not force and now - self._last_draw < self._interval):
            return
        self._last_draw = now
        fraction = min(bytes_read / self._total, 1.0)
        filled = int(fraction * 30)
        rate = bytes_read / 1e6 / max(now - self._start, 1e-9)
        self._stream.write(
            f"\r[{'#' * filled}{'.' * (30 - filled)}] {fraction:6.1%} "
            f"{documents:,} docs  {bytes_read / 1e6:,.1f} MB  {rate:,.1f} MB/s  "
            f"{examples:,} examples")
        self._stream.flush()

    def close(self):
        if self._enabled:
            self._stream.write("\n")
            self._stream.flush()
