"""One-line progress displays: the training loop's and data preparation's."""

import sys
import time


class ProgressLine:
    """Rewrites one line on a terminal; prints a line per update otherwise (logs, CI)."""

    def __init__(self, total_steps, batch_size, stream=None, width=24):
        self.total = total_steps
        self.batch_size = batch_size
        self.stream = stream or sys.stdout
        self.width = width
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_time = None
        self._last_step = None
        self._rate = None

    def update(self, step, metrics):
        now = time.time()
        if self._last_time is not None and step > self._last_step:
            rate = (step - self._last_step) / (now - self._last_time)
            # Smooth over calls so one slow loop (tracing, a checkpoint) doesn't swing the ETA.
            self._rate = rate if self._rate is None else 0.7 * self._rate + 0.3 * rate
        self._last_time, self._last_step = now, step
        done = int(self.width * step / self.total)
        bar = "=" * done + (">" if done < self.width else "") + " " * max(0, self.width - done - 1)
        parts = [f"step {step}/{self.total} [{bar}]", f"loss {metrics['loss']:.4f}"]
        if "rtd_accuracy" in metrics:
            parts.append(f"rtd_acc {metrics['rtd_accuracy']:.3f}")
        else:
            parts.append(f"mlm_acc {metrics['mlm_accuracy']:.3f}")
        if self._rate:
            eta = int((self.total - step) / self._rate)
            parts.append(f"{self._rate * self.batch_size:.1f} ex/s")
            parts.append(f"ETA {eta // 3600}:{eta // 60 % 60:02d}:{eta % 60:02d}")
        line = "  ".join(parts)
        self.stream.write(("\r" + line) if self.tty else (line + "\n"))
        self.stream.flush()

    def finish(self):
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()



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
