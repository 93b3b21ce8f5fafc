"""The plot for docs/RESULTS.md: mAP per set of a suite, one bar per column (modes and baselines)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .report import save_figure


def plot_suite(rows: Sequence[dict], columns: Sequence[str], out: Path) -> Path:
    """Grouped bars (a group per set, a bar per column) from `run_suite` rows; writes `out` (png/svg)."""
    from matplotlib.figure import Figure  # the object API: no pyplot, no global backend

    sets = [r["set"] for r in rows]
    width = 0.8 / max(len(columns), 1)
    fig = Figure(figsize=(max(8, 1.6 * len(sets)), 4.5))
    ax = fig.add_subplot(1, 1, 1)
    for j, col in enumerate(columns):
        values = [r["columns"].get(col, {}).get("map", np.nan) for r in rows]
        ax.bar(np.arange(len(sets)) + (j - (len(columns) - 1) / 2) * width, values, width, label=col,
               color=f"C{j % 10}")
    ax.set_xticks(np.arange(len(sets)), sets)
    ax.set(ylabel="mAP", ylim=(0, 1), title="mAP per set (leave-one-out or copy queries)")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return save_figure(fig, out, dpi=120)
