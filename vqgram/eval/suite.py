"""An evaluation suite: several sets, every mode and every baseline, one table.

A suite file (JSON, `SuiteSpec` in config.py) lists sets; paths in it are
relative to the file. The development suite ships in the package
(`devsuite.json`, what a bare `vqgram eval --suite` runs); its paths are
relative to the current directory, the repository's root, beside the shared
data folder (`../shared/data`) and `runs/copies`. For each set the model's modes are scored by
`runner.evaluate` (one index, full rankings), and beside them, from the same
query plan and the same metrics code:

- `gem`: GeM-pooled feature maps of the same backbone at the same input size
  (training-free; `gem.py`), read from the same feature cache;
- `sift`: a RootSIFT bag of visual words with tf-idf (`sift.py`), its
  vocabulary fit on the suite's `sift_train` folder;
- `previous`: another model (the one the package shipped before) through the
  same modes, as `previous bm25`, `previous dense`, ...

Each row holds a set's {column: {"map", "map@100"}}, the seconds each part
took and how many unreadable images every column left out; `suite_table`
prints them with a mean row. A row is handed to `on_set` as soon as its set is
scored (the CLI writes --json then), and rows read back from such a file
(`resumable_rows`, `--resume`) are kept rather than scored again.
"""
from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from ..config import SuiteSet, SuiteSpec, from_dict, to_dict
from ..tokenizer.encoder import Tokenizer
from ..tokenizer.feature_cache import default_root
from ..tokenizer.model import DEFAULT_MODEL
from . import metrics
from .runner import Evaluation, drop_self, evaluate, quality

if TYPE_CHECKING:  # the SIFT baseline is imported where it runs
    from .sift import SiftConfig

log = logging.getLogger("vqgram")

BASELINES = ("gem", "sift", "previous")
DEVSUITE = Path(__file__).resolve().parent / "devsuite.json"  # package data; its paths: from the working directory
PREVIOUS_MODEL = DEFAULT_MODEL.parent / "lift-v3"
METRICS = ("map", "map@100")


@dataclass
class SuiteResult:
    """One row per set (see the module docstring) and notes on what was skipped."""

    rows: list[dict]
    notes: list[str] = field(default_factory=list)


def load_suite(path: Path | None = None) -> SuiteSpec:
    """Read a suite file, resolve its paths against its folder, and check that every folder exists. None:
    the development suite (DEVSUITE), its paths resolved against the current directory."""
    default = path is None
    path = DEVSUITE if default else Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"suite file not found: {path}")
    try:
        data = json.loads(path.read_text())
        sets = tuple(from_dict(SuiteSet, s) for s in data.pop("sets"))
        spec = from_dict(SuiteSpec, {**data, "sets": sets})
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a suite file ({exc}); see README, 'Evaluation suite'") from None
    base = Path.cwd() if default else path.resolve().parent
    where = ("the development suite (its paths are from the current directory: run it from the repository root, "
             "or give --suite FILE)") if default else f"suite {path}"

    def resolve(p):
        if p is None:
            return None
        full = (base / p).resolve()
        if not full.is_dir():
            raise FileNotFoundError(f"{where}: folder not found: {full} (see README, 'Evaluation suite')")
        return str(full)

    sets = tuple(SuiteSet(s.name, resolve(s.db), resolve(s.queries), resolve(s.distractors), s.max_queries)
                 for s in spec.sets)
    return replace(spec, sets=sets, sift_train=resolve(spec.sift_train))


def suite_settings(spec: SuiteSpec, tokenizer: Tokenizer, modes: Sequence[str], baselines: Sequence[str],
                   previous: Tokenizer | None) -> dict:
    """What decides a suite's numbers besides each set's folders, as JSON: rows written under other settings
    are not resumed."""
    config = json.dumps(to_dict(tokenizer.config), sort_keys=True).encode()
    return {"modes": list(modes), "baselines": sorted(baselines), "model_sha256": tokenizer.model_sha256,
            "tokenizer": hashlib.sha256(config).hexdigest()[:16], "seed": spec.seed,
            "previous_sha256": previous.model_sha256 if previous is not None and "previous" in baselines else None,
            "sift": {"train": spec.sift_train, "words": spec.sift_words} if "sift" in baselines else None}


def resumable_rows(path: Path, settings: dict, spec: SuiteSpec) -> list[dict]:
    """The rows of a suite's JSON at `path` (none if it does not exist) whose sets `spec` still holds as they
    were; ValueError (one line) when it was written under other `settings` or is not such a file."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
        written, rows = data["settings"], data["sets"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"--resume: {path} is not the JSON of a suite run ({str(exc).splitlines()[0]}); give "
                         "the --json file an earlier run wrote, or a new one") from None
    differ = [key for key in settings if written.get(key) != settings[key]]
    if differ:
        raise ValueError(f"--resume: {path} was written with other settings ({', '.join(differ)} differ); run with "
                         "the same ones, or write to a new --json file")
    sets = {s.name: asdict(s) for s in spec.sets}
    return [row for row in rows if row.get("spec") is not None and sets.get(row["set"]) == row["spec"]]


def run_suite(spec: SuiteSpec, tokenizer: Tokenizer, modes: Sequence[str], *, baselines: Sequence[str] = BASELINES,
              previous: Tokenizer | None = None, cache_root: Path | None = None, progress: bool = True,
              sift_config: SiftConfig | None = None, done: Sequence[dict] = (),
              on_set: Callable[[SuiteResult], None] | None = None) -> SuiteResult:
    """Score every set of `spec` by `modes` and `baselines` (see the module docstring). Sets with a row in
    `done` keep it; `on_set(result so far)` follows each set scored."""
    unknown = set(baselines) - set(BASELINES)
    if unknown:
        raise ValueError(f"unknown baseline(s) {', '.join(sorted(unknown))}; choose from {', '.join(BASELINES)}")
    result = SuiteResult([])
    if "previous" in baselines and previous is None:
        result.notes.append(f"previous: skipped, no previous model ({PREVIOUS_MODEL} is absent; "
                            "name one with --baseline-model)")
    bow = None
    if "sift" in baselines:
        if spec.sift_train is None:
            result.notes.append("sift: the suite names no sift_train folder; column skipped")
        else:
            from .sift import SiftBoW, SiftConfig

            config = sift_config or SiftConfig(words=spec.sift_words, seed=spec.seed)
            bow = SiftBoW(Path(cache_root or default_root()), Path(spec.sift_train), config, progress=progress)
    earlier = {row["set"]: row for row in done}
    if earlier:
        result.notes.append(f"resumed: {', '.join(earlier)} (rows of an earlier run, not scored again)")
    for suite_set in spec.sets:
        if suite_set.name in earlier:
            result.rows.append(earlier[suite_set.name])
            continue
        log.info("suite: set %s", suite_set.name)
        row = _score_set(suite_set, spec.seed, tokenizer, modes, baselines, previous, bow, cache_root, progress)
        log.info("suite: %s: %s (seconds: %s)", row["set"],
                 ", ".join(f"{c} {_fmt(cell)}" for c, cell in row["columns"].items()), row["seconds"])
        result.rows.append(row)
        if on_set is not None:
            on_set(result)
    return result


def _score_set(s: SuiteSet, seed, tokenizer, modes, baselines, previous, bow, cache_root, progress) -> dict:
    seconds, columns = {}, {}
    start = time.time()
    ev = _evaluate(s, seed, tokenizer, modes, cache_root, progress)
    columns.update({row["mode"]: _cell(row) for row in ev.rows})
    seconds["model"] = round(time.time() - start, 1)
    db = [item.path for item in ev.dataset.items]
    queries = None if ev.dataset.queries is None else [q.path for q in ev.plan.queries]
    if "gem" in baselines:
        from .gem import gem_scores

        start = time.time()
        cache = tokenizer.feature_cache(cache_root) if cache_root else None
        columns["gem"] = _cell(quality(_ranking(gem_scores(tokenizer, db, queries, ev.plan.self_ids, cache), ev),
                                       ev.plan, ev.dataset))
        seconds["gem"] = round(time.time() - start, 1)
    if bow is not None:
        from .sift import sift_scores

        start = time.time()
        columns["sift"] = _cell(quality(_ranking(sift_scores(bow, db, queries, ev.plan.self_ids), ev),
                                        ev.plan, ev.dataset))
        seconds["sift"] = round(time.time() - start, 1)
    if previous is not None and "previous" in baselines:
        start = time.time()
        columns.update({f"previous {row['mode']}": _cell(row)
                        for row in _evaluate(s, seed, previous, modes, cache_root, progress).rows})
        seconds["previous"] = round(time.time() - start, 1)
    return {"set": s.name, "queries": len(ev.plan.queries), "database": len(db), "skipped": len(ev.skipped),
            "columns": columns, "seconds": seconds, "spec": asdict(s)}


def _evaluate(s: SuiteSet, seed, tokenizer, modes, cache_root, progress) -> Evaluation:
    """The runner on one set, its index in a temporary folder (removed afterwards)."""
    cache = tokenizer.feature_cache(cache_root) if cache_root else None
    with tempfile.TemporaryDirectory(prefix="vqgram-suite-") as work:
        return evaluate(Path(s.db), modes, tokenizer, queries=_path(s.queries), distractors=_path(s.distractors),
                        max_queries=s.max_queries, seed=seed, work_dir=Path(work), cache=cache, progress=progress)


def _path(p: str | None) -> Path | None:
    return Path(p) if p else None


def _ranking(scores: np.ndarray, ev: Evaluation) -> np.ndarray:
    """Full rankings by (-score, position), the query itself dropped for leave-one-out."""
    ranked = metrics.rank_by_score(scores).astype(np.int32)
    return drop_self(ranked, ev.plan.self_ids) if ev.plan.exclude_self else ranked


def _cell(row: dict) -> dict:
    """mAP and MAP@100 of a runner row (MAP@k with k = the database size when it holds fewer than 100)."""
    cut = next(k for k in row if k.startswith("map@"))
    return {"map": row["map"], "map@100": row[cut]}


def column_names(rows: Sequence[dict]) -> list[str]:
    """Every column in first-seen order."""
    return list(dict.fromkeys(c for r in rows for c in r["columns"]))


def suite_table(result: SuiteResult) -> str:
    """Markdown: one row per set and a mean row; each cell 'mAP / MAP@100'."""
    cols = column_names(result.rows)
    head = ["set", "queries", "db", *cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result.rows:
        cells = [_fmt(r["columns"].get(c)) for c in cols]
        lines.append(f"| {r['set']} | {r['queries']} | {r['database']} | " + " | ".join(cells) + " |")
    means = mean_row(result.rows)
    lines.append("| **mean** | | | " + " | ".join(_fmt(means.get(c)) for c in cols) + " |")
    skips = [f"{r['set']}: {r['skipped']} unreadable image(s) left out of every column (as the indexer skipped them)"
             for r in result.rows if r.get("skipped")]
    notes = "".join(f"\n- {n}" for n in result.notes + skips)
    return "\n".join(lines) + "\n\nEach cell: mAP / MAP@100." + notes + "\n"


def mean_row(rows: Sequence[dict]) -> dict:
    """{column: {metric: mean over the sets that have it}}."""
    out = {}
    for c in column_names(rows):
        cells = [r["columns"][c] for r in rows if c in r["columns"]]
        out[c] = {m: float(np.mean([cell[m] for cell in cells])) for m in METRICS}
    return out


def _fmt(cell: dict | None) -> str:
    return "–" if cell is None else f"{cell['map']:.3f} / {cell['map@100']:.3f}"


def suite_json(result: SuiteResult, settings: dict) -> str:
    """The rows, their mean and notes, and the `suite_settings` they were scored under (for --resume)."""
    return json.dumps({"sets": result.rows, "mean": mean_row(result.rows), "notes": result.notes,
                       "settings": settings}, indent=2) + "\n"
