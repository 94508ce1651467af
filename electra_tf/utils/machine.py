"""What a run ran on, in a line for its records and model cards."""

import os
import platform


def cpu_model():
    """The CPU's model name (`/proc/cpuinfo`'s, where there is one).

    Example:

    >>> isinstance(cpu_model(), str) and len(cpu_model()) > 0
    True
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def describe(accelerators=""):
    """The host's CPU and core count, then `accelerators` (e.g. "2 x GPU"), if any.

    Args:
        accelerators: what trained besides the CPU, as the caller knows it.

    Example:

    >>> describe("1 x GPU").endswith("cores; 1 x GPU")
    True
    """
    host = f"{cpu_model()}, {os.cpu_count()} cores"
    return f"{host}; {accelerators}" if accelerators else host
