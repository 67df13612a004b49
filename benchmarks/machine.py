"""The machine line every benchmark prints, so figures are quoted with where they were taken."""

import os
import platform


def machine() -> str:
    """CPU model, core count and Python version."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores; Python {platform.python_version()}"
