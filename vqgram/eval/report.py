"""Evaluation reports: tables (markdown, CSV, JSON), plots, and an HTML page of example queries.

A result row is a mapping with the evaluation contract's keys (`mode`, `map`,
`map@100`, `p@10`, `query_ms_p50`, `query_ms_p95`, `index_bytes`, `build_s`),
optionally `dims`, `subsets` ({name: mAP}, e.g. GPR1200's six parts),
`labels` ({label: mAP}) and other scalar keys describing the configuration
(kernel, heads, ...). Tables put one row per configuration sorted by mAP, as
the seed study's do; the JSON keeps the rows as given, under "results".

Plots need matplotlib (`pip install 'vqgram[plots]'`); without it everything
else is written and one log line says the plots were skipped. Plots against
`dims` group rows into series by the mode's name without "@D" (`dense@32`,
`dense@64` -> "dense"; `dense@32+prf10` -> "dense+prf10").
"""
from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import logging
import math
import numbers
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from vqgram.files import write_atomic
from vqgram.images import DECODE_ERRORS, thumbnail_jpeg

log = logging.getLogger("vqgram")

Row = Mapping[str, Any]

# (key, header) of the contract's metrics, in table order.
METRICS = (("map", "mAP"), ("map@100", "MAP@100"), ("p@10", "P@10"), ("r@10", "R@10"), ("query_ms_p50", "p50 ms"),
           ("query_ms_p95", "p95 ms"), ("index_bytes", "index"), ("build_s", "build s"))
_NESTED = ("subsets", "labels")
_DIGITS = {"map": 4, "map@100": 4, "p@10": 4, "query_ms_p50": 2, "query_ms_p95": 2, "build_s": 1}


@dataclass(frozen=True)
class Hit:
    """One ranked result shown on the example page."""

    path: str
    score: float | None  # None: ranked, score not kept
    relevant: bool


@dataclass(frozen=True)
class Example:
    """A query image and its top hits under one mode."""

    mode: str
    query: str
    hits: Sequence[Hit]
    label: str = ""


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, numbers.Real) and math.isnan(value))


def sort_by_map(rows: Sequence[Row]) -> list[Row]:
    """Rows by mAP descending (stable; rows without mAP last)."""
    return sorted(rows, key=lambda r: math.inf if _missing(r.get("map")) else -r["map"])


def _subset_names(rows: Sequence[Row]) -> list[str]:
    return list(dict.fromkeys(name for r in rows for name in r.get("subsets", {})))


def _columns(rows: Sequence[Row]) -> list[tuple[str, str]]:
    """(key, header): mode, configuration keys, dims, the metrics present, sub-scores."""
    cuts = [(k, k.replace("map", "MAP")) for k in dict.fromkeys(k for r in rows for k in r)
            if re.fullmatch(r"map@\d+", k) and k != "map@100"]  # MAP@k of databases under 100 images
    known = {"mode", "dims", *_NESTED, *(k for k, _ in METRICS), *(k for k, _ in cuts)}
    extra = dict.fromkeys(k for r in rows for k in r if k not in known)
    present = [(k, h) for k, h in METRICS[:2] + tuple(cuts) + METRICS[2:] if any(k in r for r in rows)]
    dims = [("dims", "dims")] if any("dims" in r for r in rows) else []
    subsets = [(f"subsets.{n}", n) for n in _subset_names(rows)]
    return [("mode", "mode"), *((k, k) for k in extra), *dims, *present, *subsets]


def _get(row: Row, key: str) -> Any:
    if key.startswith("subsets."):
        return row.get("subsets", {}).get(key[len("subsets.") :])
    return row.get(key)


def _fmt(key: str, value: Any) -> str:
    """Human formatting for the markdown tables."""
    if value is None:
        return ""
    if _missing(value):
        return "nan"
    if key == "index_bytes":
        return human_bytes(value)
    if isinstance(value, numbers.Real) and (key in _DIGITS or not isinstance(value, numbers.Integral)):
        return f"{value:.{_DIGITS.get(key, 4)}f}"
    return str(value)


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    i = 0
    while abs(n) >= 1024 and i < len(units) - 1:
        n, i = n / 1024, i + 1
    return f"{int(n)} B" if i == 0 else f"{n:.1f} {units[i]}"


def _markdown(headers: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines) + "\n"


def _row_table(rows: Sequence[Row], cols: Sequence[tuple[str, str]]) -> str:
    body = [[_fmt(k, _get(r, k)) for k, _ in cols] for r in sort_by_map(rows)]
    return _markdown([h for _, h in cols], body)


def markdown_table(rows: Sequence[Row]) -> str:
    """The results table in markdown, one row per configuration, sorted by mAP."""
    return _row_table(rows, _columns(rows))


def sweep_table(rows: Sequence[Row], keys: Sequence[str]) -> str:
    """Print (and return) a sweep table: `keys`, mAP, then sub-scores; sorted by mAP."""
    subsets = [(f"subsets.{n}", n) for n in _subset_names(rows)]
    text = _row_table(rows, [*((k, k) for k in keys), ("map", "mAP"), *subsets])
    print(text, end="")
    return text


def label_table(rows: Sequence[Row]) -> str:
    """Per-label mAP in markdown: one row per label, one column per mode (in mAP order)."""
    header, body = _label_grid(rows)
    return _markdown(header, [[cells[0], *(_fmt("map", v) for v in cells[1:])] for cells in body])


def _label_grid(rows: Sequence[Row]) -> tuple[list[str], list[list[Any]]]:
    ranked = [r for r in sort_by_map(rows) if r.get("labels")]
    labels = sorted({label for r in ranked for label in r["labels"]})
    body = [[label, *(r["labels"].get(label) for r in ranked)] for label in labels]
    return ["label", *(str(r["mode"]) for r in ranked)], body


def _csv(lines: Sequence[Sequence[Any]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(lines)  # None becomes an empty cell
    return out.getvalue()


def csv_text(rows: Sequence[Row]) -> str:
    """The results table as CSV (raw numbers), sorted by mAP."""
    cols = _columns(rows)
    return _csv([[h for _, h in cols], *([_get(r, k) for k, _ in cols] for r in sort_by_map(rows))])


def results_json(rows: Sequence[Row], skipped: Sequence[Any] | None = None) -> str:
    """`{"results": [...]}` as the evaluation contract says; NaN becomes null, numpy values plain. `skipped`
    (images.Skipped: the unreadable images every mode left out) adds `"skipped": [{"path", "reason"}]`."""
    clean = json.loads(json.dumps(list(rows), default=_plain), parse_constant=lambda _: None)
    out = {"results": clean}
    if skipped is not None:
        out["skipped"] = [{"path": s.path, "reason": s.reason} for s in skipped]
    return json.dumps(out, indent=2) + "\n"


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON: {value!r}")


def write_report(
    folder: str | Path,
    rows: Sequence[Row],
    pr_curves: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
    examples: Sequence[Example] = (),
    title: str = "vqgram evaluation",
    skipped: Sequence[Any] | None = None,
) -> dict[str, Path]:
    """Write results.{md,csv,json}, labels.csv, plots and examples.html into `folder`.

    pr_curves: {mode: (recall, precision)}; skipped: as `results_json` takes it. Returns {file name: path}
    of what was written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    md = f"# {title}\n\n" + markdown_table(rows)
    if skipped:
        md += f"\n{len(skipped)} unreadable image(s) left out of every mode (as the indexer skipped them).\n"
    written = []
    if any(r.get("labels") for r in rows):
        md += "\n## mAP per label\n\n" + label_table(rows)
        header, body = _label_grid(rows)
        written.append(_write(folder / "labels.csv", _csv([header, *body])))
    written.append(_write(folder / "results.md", md))
    written.append(_write(folder / "results.csv", csv_text(rows)))
    written.append(_write(folder / "results.json", results_json(rows, skipped)))
    written += write_plots(folder, rows, pr_curves or {})
    if examples:
        written.append(write_examples(folder, examples, title=title))
    return {p.name: p for p in written}


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def write_plots(
    folder: str | Path, rows: Sequence[Row], pr_curves: Mapping[str, tuple[Sequence[float], Sequence[float]]]
) -> list[Path]:
    """PNG plots against dims, and precision-recall curves; [] (and a log line) without matplotlib."""
    try:
        from matplotlib.figure import Figure  # the object API: no pyplot, no global backend
        from matplotlib.ticker import ScalarFormatter
    except ImportError:
        log.info("plots skipped: matplotlib is not installed (pip install 'vqgram[plots]')")
        return []
    written = []
    series = _series(rows)
    for name, panels in (_DIMS_PLOTS if series else {}).items():
        fig = Figure(figsize=(5 * len(panels), 3.6))
        for i, (ylabel, keys) in enumerate(panels, start=1):
            ax = fig.add_subplot(1, len(panels), i)
            for colour, (family, points) in enumerate(series.items()):
                for key, style, suffix in keys:
                    xy = [(r["dims"], r[key] * _SCALE.get(key, 1)) for r in points if not _missing(r.get(key))]
                    if xy:
                        ax.plot(*zip(*xy), style, color=f"C{colour}", marker="o", label=f"{family}{suffix}")
            ax.set_xscale("log", base=2)
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.set(xlabel="dims", ylabel=ylabel)
            _finish(ax)
        written.append(save_figure(fig, Path(folder) / name))
    if pr_curves:
        fig = Figure(figsize=(4.5, 4))
        ax = fig.add_subplot(1, 1, 1)
        for mode, (recall, precision) in pr_curves.items():
            ax.plot(recall, precision, marker=".", label=mode)
        ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
        _finish(ax)
        written.append(save_figure(fig, Path(folder) / "pr.png"))
    return written


# file -> panels of (y label, [(row key, line style, legend suffix)])
_DIMS_PLOTS = {
    "map_vs_dims.png": [("mAP", [("map", "-", "")])],
    "latency_vs_dims.png": [("query ms", [("query_ms_p50", "-", " p50"), ("query_ms_p95", "--", " p95")])],
    "size_vs_dims.png": [("index MiB", [("index_bytes", "-", "")]), ("build s", [("build_s", "-", "")])],
}
_SCALE = {"index_bytes": 2**-20}


def _finish(ax: Any) -> None:
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def save_figure(fig: Any, path: Path, dpi: int = 110) -> Path:
    """Lay out a matplotlib Figure and write it to `path` (folders made as needed)."""
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return Path(path)


def _series(rows: Sequence[Row]) -> dict[str, list[Row]]:
    """Rows with dims grouped by mode family (the name without its '@D'), sorted by dims."""
    out: dict[str, list[Row]] = {}
    for r in rows:
        if not _missing(r.get("dims")):
            out.setdefault(re.sub(r"@\d+", "", str(r["mode"])), []).append(r)
    return {k: sorted(v, key=lambda r: r["dims"]) for k, v in out.items()}


_PAGE_STYLE = """body{font:13px sans-serif;margin:1em}
section.query{margin-bottom:1.5em;border-bottom:1px solid #ccc}
figure{display:inline-block;margin:3px;text-align:center;vertical-align:top}
figcaption{font-size:11px;max-width:%dpx;overflow-wrap:anywhere}
img{display:block;border:4px solid #888}
.rel img{border-color:#1a9850}.nonrel img{border-color:#d73027}.query-image img{border-color:#333}"""


def write_examples(
    folder: str | Path, examples: Sequence[Example], thumb_px: int = 128, title: str = "vqgram examples"
) -> Path:
    """examples.html: one section per query, hits framed green (relevant) or red; thumbnails in thumbs/."""
    folder = Path(folder)
    (folder / "thumbs").mkdir(parents=True, exist_ok=True)
    parts = [
        f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>",
        f"<style>{_PAGE_STYLE % thumb_px}</style></head><body>\n<h1>{html.escape(title)}</h1>",
    ]
    for ex in examples:
        label = f" &middot; {html.escape(ex.label)}" if ex.label else ""
        parts.append(f'<section class="query">\n<h2>{html.escape(ex.mode)}{label}</h2>')
        parts.append(_figure(folder, ex.query, "query-image", "query", thumb_px))
        for rank, hit in enumerate(ex.hits, start=1):
            kind = "rel" if hit.relevant else "nonrel"
            parts.append(_figure(folder, hit.path, f"hit {kind}", f"{rank}. {hit.score:.4g}" if hit.score is not None else f"{rank}.", thumb_px))
        parts.append("</section>")
    parts.append("</body></html>\n")
    path = folder / "examples.html"
    _write(path, "\n".join(parts))
    return path


def _figure(folder: Path, image: str, css: str, caption: str, thumb_px: int) -> str:
    name = Path(image).name
    thumb = _thumbnail(folder, image, thumb_px)
    img = f'<img src="{html.escape(thumb)}" alt="{html.escape(name)}">' if thumb else f"<div>{html.escape(name)}</div>"
    return (
        f'<figure class="{css}" title="{html.escape(str(image))}">{img}'
        f"<figcaption>{html.escape(caption)}<br>{html.escape(name)}</figcaption></figure>"
    )


def _thumbnail(folder: Path, image: str, size: int) -> str | None:
    """A small JPEG of `image` under thumbs/ (reused while the image is unchanged); None if unreadable."""
    try:
        key = f"{os.path.abspath(image)}:{os.path.getmtime(image)}:{size}"
        rel = f"thumbs/{hashlib.sha1(key.encode()).hexdigest()[:16]}.jpg"
        if not (folder / rel).exists():
            write_atomic(folder / rel, thumbnail_jpeg(image, size))
        return rel
    except DECODE_ERRORS as exc:
        log.warning("example image %s not shown: %s", image, exc)
        return None
