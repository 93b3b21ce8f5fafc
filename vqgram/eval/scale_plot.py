"""The plot for docs/SCALE.md: query p50 and recall@100 against collection size, one line per (backend, mode)."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Sequence

from .report import save_figure


def plot_scale(rows: Sequence[dict], out: Path) -> Path:
    """Two panels (p50 ms on log-log axes; recall@100) from `vqgram bench scale` rows; writes `out` (png/svg)."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure  # the object API: no pyplot, no global backend

    lines: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        lines[f"{r['backend']} {r['mode']}"].append(r)
    fig = Figure(figsize=(14, 4.5))
    cost, quality = fig.subplots(1, 2)
    for ax in (cost, quality):
        ax.set_prop_cycle(color=colormaps["tab20"].colors)
    for name, pts in sorted(lines.items()):
        pts = sorted(pts, key=lambda r: r["docs"])
        n = [r["docs"] for r in pts]
        style = "--" if name.startswith("lucene") else "-"
        cost.plot(n, [r["p50_ms"] for r in pts], style, marker="o", label=name)
        quality.plot(n, [r["recall_at_100"] for r in pts], style, marker="o", label=name)
    cost.set(xscale="log", yscale="log", xlabel="documents", ylabel="query p50 (ms)", title="Query cost")
    cost.axhline(100, color="grey", lw=0.8, ls=":")
    quality.set(xscale="log", xlabel="documents", ylabel="recall@100 vs exhaustive", title="Quality", ylim=(0, 1.02))
    quality.axhline(0.95, color="grey", lw=0.8, ls=":")
    quality.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    return save_figure(fig, out, dpi=120)
