"""`vqgram eval --sweep`: tokenizer settings and nesting dimensions, one row per configuration.

Tokenizer settings are varied one at a time around the given tokenizer (a
full product of six settings is hundreds of indexes): input size, k-gram
kernel, padding, 2D vs 3D, heads and codebook size. Feature maps come from
the feature cache, so after the first pass a configuration costs its head
fit (heads, codebook size: PCA + k-means on this dataset's maps, no
training labels), its index build and its searches. Nesting dimensions are
swept with the given model: on Lucene one index per prefix size (its HNSW
field has that many dimensions, so index size and build time per dimension
are real); on Tantivy, which scans exactly, one index serves every size.
"""
from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Sequence

from ..config import KGramConfig
from ..tokenizer.embedding_sizes import embedding_sizes
from ..tokenizer.encoder import Tokenizer
from ..tokenizer.feature_cache import FeatureCache
from ..tokenizer.model import VQGramModel
from ..tokenizer.train import cache_features, fit_vq, scan_folder
from .runner import evaluate

log = logging.getLogger("vqgram")


@dataclass(frozen=True)
class TokenizerSetting:
    """One sweep row's tokenizer: what the seed study's tables vary."""

    max_size: int
    kernel: int
    padding: int
    kgram: str  # "2d" or "3d"
    heads: int
    codebook_size: int

    @classmethod
    def of(cls, tokenizer: Tokenizer) -> "TokenizerSetting":
        kg, vq = tokenizer.config.kgram, tokenizer.config.model.vq
        return cls(tokenizer.config.max_size, kg.kernel, kg.padding, kg.kind, vq.heads, vq.codebook_size)


KEYS = tuple(f.name for f in fields(TokenizerSetting))

DEFAULT_GRID: dict[str, tuple] = {
    "max_size": (160, 224, 288),
    "kernel": (1, 2, 3, 4),
    "padding": (0, 1),
    "kgram": ("2d", "3d"),
    "heads": (4, 8, 16),
    "codebook_size": (32, 64, 128),
}


def parse_grid(spec: str) -> dict[str, tuple]:
    """'kernel=1,2,3;heads=8,16' -> {'kernel': (1, 2, 3), 'heads': (8, 16)}; 'default' -> DEFAULT_GRID."""
    if spec.strip() in ("", "default"):
        return dict(DEFAULT_GRID)
    grid = {}
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        key, eq, values = part.partition("=")
        key = key.strip().replace("-", "_")
        if not eq or key not in KEYS or not values.strip():
            raise ValueError(f"bad sweep setting {part!r}: write KEY=V1,V2 with KEY one of {', '.join(KEYS)}")
        kind = str if key == "kgram" else int
        try:
            grid[key] = tuple(kind(v.strip()) for v in values.split(","))
        except ValueError:
            raise ValueError(f"bad sweep setting {part!r}: {key} takes whole numbers") from None
    return grid


def one_at_a_time(base: TokenizerSetting, grid: dict[str, tuple]) -> list[TokenizerSetting]:
    """The base setting, then each grid value applied to it alone (no repeats)."""
    out = [base]
    for key, values in grid.items():
        out += [s for s in (replace(base, **{key: v}) for v in values) if s not in out]
    return out


def sweep_tokenizers(db: Path, base: Tokenizer, grid: dict[str, tuple], modes: Sequence[str] = ("bm25",), *,
                     cache_root: Path | None = None, backend: str = "tantivy", layout: str = "auto",
                     work_dir: Path | None = None, latency_queries: int = 100) -> list[dict]:
    """Rows of `modes` for every setting of `one_at_a_time`, each row carrying its setting."""
    if base.config.model.vq is None:
        raise ValueError("--sweep varies the k-gram words of a VQ model; this model makes lifted words (no VQ head)")
    work = Path(work_dir or tempfile.mkdtemp(prefix="vqgram-sweep-"))
    models: dict[tuple, VQGramModel] = {}
    rows = []
    settings = one_at_a_time(TokenizerSetting.of(base), grid)
    for n, s in enumerate(settings):
        log.info("sweep %d/%d: %s", n + 1, len(settings), s)
        model = _model_for(db, base, s, models, cache_root)
        tok = Tokenizer(model, KGramConfig(s.kgram, s.kernel, s.padding), s.max_size,
                        model_path=base.model_path, model_sha256=base.model_sha256 if model is base.model else "")
        cache = tok.feature_cache(cache_root) if cache_root else None
        result = evaluate(db, modes, tok, backend=backend, layout=layout, work_dir=work / f"setting-{n}",
                          cache=cache, latency_queries=latency_queries)
        rows += [{**r, **{k: getattr(s, k) for k in KEYS}} for r in result.rows]
    return rows


def _model_for(db, base: Tokenizer, s: TokenizerSetting, models: dict, cache_root) -> VQGramModel:
    """The base model, or a copy whose VQ head (other heads or codebook size) is fitted on `db`."""
    vq = base.config.model.vq
    if (s.heads, s.codebook_size) == (vq.heads, vq.codebook_size):
        return base.model
    key = (s.heads, s.codebook_size, s.max_size)
    if key not in models:
        config = replace(base.config.model, vq=replace(vq, heads=s.heads, codebook_size=s.codebook_size))
        model = VQGramModel(config)
        model.load_state_dict({k: v for k, v in base.model.heads_state().items() if not k.startswith("vq.")},
                              strict=False)  # keep the embedding head
        disk = FeatureCache(cache_root, config, s.max_size) if cache_root else None
        fit_vq(model, cache_features(model, scan_folder(db), s.max_size, disk=disk))
        models[key] = model.eval()
    return models[key]


def sweep_dims(db: Path, tokenizer: Tokenizer, dims: Sequence[int] | None = None, *, cache_root: Path | None = None,
               backend: str = "tantivy", layout: str = "auto", work_dir: Path | None = None,
               latency_queries: int = 100, **backend_options) -> list[dict]:
    """One `dense@D` row per nesting size D, each from its own index (Lucene: a D-dim HNSW field)."""
    if dims is None:
        dims = embedding_sizes(tokenizer.config.model)
        if len(dims) < 2:
            raise ValueError("this model's embedding has no nested prefixes: give the dimensions to sweep")
    work = Path(work_dir or tempfile.mkdtemp(prefix="vqgram-sweep-"))
    cache = tokenizer.feature_cache(cache_root) if cache_root else None
    if backend != "lucene":  # one index serves every prefix
        return evaluate(db, [f"dense@{d}" for d in dims], tokenizer, backend=backend, layout=layout,
                        work_dir=work / "dims", cache=cache, latency_queries=latency_queries, **backend_options).rows
    rows = []
    for d in dims:
        rows += evaluate(db, [f"dense@{d}"], tokenizer, backend=backend, layout=layout, work_dir=work / f"dims-{d}",
                         cache=cache, latency_queries=latency_queries, **{**backend_options, "dense_dims": d}).rows
    return rows
