"""How many CPU cores this process may run on (its affinity mask, not the machine's count)."""
from __future__ import annotations

import os


def usable_cores() -> int:
    """Cores in this process's affinity mask (a container or `taskset` may allow fewer than the machine has)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
