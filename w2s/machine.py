"""One line that says what a benchmark or an experiment ran on: cores, CPU model, torch (and its thread
count), Python, the OS, and the 1-minute load average at the time of the call."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one), or what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def machine() -> str:
    """`N cores, CPU, torch V (T threads), python V, OS release, load average L`. Torch is not imported
    here: its thread count is given when the caller has imported it, its version whenever installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        torch_part = f"torch {version('torch')}"
    except PackageNotFoundError:
        torch_part = "torch not installed"
    if (torch := sys.modules.get("torch")) is not None:
        torch_part += f" ({torch.get_num_threads()} threads)"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{os.cpu_count()} cores, {cpu_model()}, {torch_part}, python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}, load average {load:.1f}"
    )
