"""Every setting as a frozen dataclass, saved as JSON beside each index and model.

An index records the tokenizer that made it (`IndexManifest`), so opening it
with another tokenizer fails with a sentence instead of returning nonsense.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence, TypeVar

from .files import write_atomic

T = TypeVar("T")

MANIFEST_NAME = "vqgram.json"


@dataclass(frozen=True)
class KGramConfig:
    """How a code grid becomes words (see ARCHITECTURE.md, "Words").

    kind: "2d" slides a kernel x kernel window over each head's grid;
    "3d" also slides it `kernel` heads deep along the head axis.
    """

    kind: str = "2d"
    kernel: int = 3
    padding: int = 0
    stride: int = 1

    def __post_init__(self) -> None:
        if self.kind not in ("2d", "3d"):
            raise ValueError(f"k-gram kind {self.kind!r} is not one of '2d', '3d'")
        if self.kernel < 1 or self.stride < 1 or self.padding < 0:
            raise ValueError(
                f"k-gram kernel={self.kernel}, stride={self.stride} must be >= 1 "
                f"and padding={self.padding} >= 0"
            )


@dataclass(frozen=True)
class VQConfig:
    """The multi-head VQ head (vector-quantize-pytorch)."""

    heads: int = 8
    codebook_dim: int = 16
    codebook_size: int = 64
    commitment_weight: float = 0.0
    threshold_ema_dead_code: int = 2
    decay: float = 0.99
    separate_codebooks: bool = True  # one codebook per head (the seed study shared one: measured worse here)


DEFAULT_NESTING = (8, 16, 32, 64, 128, 256, 512, 1024)


def _resolve_nesting(dim: int, nesting: Sequence[int] | None) -> tuple[int, ...]:
    if nesting is None:
        sizes = [m for m in DEFAULT_NESTING if m < dim]
        return tuple(sizes + [dim])
    sizes = tuple(int(m) for m in nesting)
    if not sizes or list(sizes) != sorted(set(sizes)):
        raise ValueError(f"nesting {sizes} must be a non-empty, strictly increasing list of sizes")
    if sizes[0] < 1 or sizes[-1] > dim:
        raise ValueError(f"nesting {sizes} must lie within 1..dim={dim}")
    return sizes


@dataclass(frozen=True)
class MatryoshkaConfig:
    """The head's shape and its nested loss.

    dim: embedding width. nesting: prefix sizes that get a loss; None means
    the default list (8 ... 1024) cut at dim, plus dim itself.
    weights: one loss weight per nesting size (None: all 1).
    efficient: one classifier W (num_classes, dim) shared by every prefix,
    prefix m using W[:, :m] (MRL-E); otherwise one classifier per size.
    hidden: 0 for a linear projection, else the hidden width of a 2-layer MLP.
    temperature: distillation temperature (student and teacher logits are
    divided by it; the loss is scaled by T^2, Hinton et al. 2015).
    relational_weight: weight of an extra in-batch term (`relational_loss`)
    that makes every prefix rank the batch like a target similarity:
    relational_target "self" (the full embedding, detached: prefixes agree
    with the full width, which is what a funnel needs) or "teacher" (cosine
    of the teacher's probabilities; only with soft targets).
    relational_temperature: softmax temperature of those similarities.
    """

    in_dim: int = 1280
    dim: int = 1024
    nesting: tuple[int, ...] | None = None
    weights: tuple[float, ...] | None = None
    efficient: bool = False
    num_classes: int = 1000
    hidden: int = 0
    temperature: float = 1.0
    relational_weight: float = 0.0
    relational_target: str = "self"
    relational_temperature: float = 0.1

    def __post_init__(self) -> None:
        if self.dim < 1 or self.in_dim < 1 or self.num_classes < 2:
            raise ValueError(
                f"dim={self.dim}, in_dim={self.in_dim} must be >= 1 and num_classes={self.num_classes} >= 2"
            )
        if self.hidden < 0:
            raise ValueError(f"hidden={self.hidden} must be 0 (linear) or a positive width")
        if self.temperature <= 0 or self.relational_temperature <= 0:
            raise ValueError(
                f"temperature={self.temperature}, relational_temperature={self.relational_temperature} must be > 0"
            )
        if self.relational_target not in ("self", "teacher"):
            raise ValueError(f"relational_target {self.relational_target!r} is not one of 'self', 'teacher'")
        if self.relational_weight < 0:
            raise ValueError(f"relational_weight={self.relational_weight} must be >= 0")
        nesting = _resolve_nesting(self.dim, self.nesting)
        object.__setattr__(self, "nesting", nesting)
        weights = (1.0,) * len(nesting) if self.weights is None else tuple(float(w) for w in self.weights)
        if len(weights) != len(nesting):
            raise ValueError(f"{len(weights)} loss weights for {len(nesting)} nesting sizes {nesting}")
        if any(w < 0 for w in weights):
            raise ValueError(f"loss weights {weights} must be >= 0")
        object.__setattr__(self, "weights", weights)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "MatryoshkaConfig":
        d = dict(d)
        for k in ("nesting", "weights"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        return cls(**d)


@dataclass(frozen=True)
class LiftConfig:
    """The lift head: one global descriptor per image -> dense embedding and sparse "lifted" words.

    descriptor: [sqrt(1 - class_weight^2) * GeM_p(feature map) ; class_weight * Matryoshka embedding],
    both parts L2-normalised (GeM keeps what tells photos apart, the class-distilled embedding what
    makes ImageNet classes cluster). whiten_pairs: when > 0, the GeM block is first whitened by the
    covariance of (original - edited copy) differences of that many originals of the training folder
    (ten `copies.EDITS` each, seeded by `seed + 1`; learned whitening, Radenović et al. TPAMI 2019),
    shrunk by `whiten_shrink` toward its mean eigenvalue: directions that edits move are damped, the
    class block is left alone. dims: PCA components kept (in the whitened space); the dense embedding
    is the descriptor in that basis (prefixes ordered by variance). Words: the centred PCA coordinates times a fixed
    Gaussian matrix (rebuilt from `seed`) lifted to `atoms` dimensions; the `active` strongest are the image's
    words, the strongest with term frequency `levels`, the others in proportion (at least 1).
    invariance_hidden: when > 0 (needs whiten_pairs), a residual MLP of that width on the centred descriptor
    is added to the projection, trained on the same pairs (`train_invariance.py`): InfoNCE between an
    original and its copies against other training images (temperature `invariance_temperature`), plus
    `invariance_relational` x a relational term keeping the training images' neighbourhoods as the linear
    projection ranks them, for `invariance_epochs` passes over the pairs.
    """

    gem_p: float = 3.0
    class_weight: float = 0.6
    dims: int = 1024
    atoms: int = 65536
    active: int = 384
    levels: int = 10
    seed: int = 0
    whiten_pairs: int = 0
    whiten_shrink: float = 0.1
    invariance_hidden: int = 0
    invariance_epochs: int = 20
    invariance_relational: float = 10.0
    invariance_temperature: float = 0.05

    def __post_init__(self) -> None:
        if self.invariance_hidden < 0 or (self.invariance_hidden and not self.whiten_pairs):
            raise ValueError(f"invariance_hidden={self.invariance_hidden} must be >= 0, and > 0 only with "
                             "whiten_pairs > 0 (it trains on those pairs)")
        if self.whiten_pairs < 0 or not 0 <= self.whiten_shrink <= 1:
            raise ValueError(f"whiten_pairs={self.whiten_pairs} must be >= 0 and whiten_shrink="
                             f"{self.whiten_shrink} in [0, 1]")
        if not 0 <= self.class_weight < 1:
            raise ValueError(f"class_weight={self.class_weight} must be in [0, 1)")
        if self.gem_p < 1 or self.dims < 1 or self.levels < 1:
            raise ValueError(f"gem_p={self.gem_p}, dims={self.dims}, levels={self.levels} must be >= 1")
        if not 1 <= self.active < self.atoms:
            raise ValueError(f"active={self.active} words must be in 1..atoms-1 (atoms={self.atoms})")


@dataclass(frozen=True)
class GridConfig:
    """The grid head: local words, one per cell of a backbone stage's feature map (tokenizer/grid.py).

    stage: the backbone stage whose output is coded (efficientnet_lite0: 2 = stride 8, 40 channels; 4 = stride
    16, 112 channels). size: the longer side documents are read at for it (None: the tokenizer's max_size, so
    the cells come from the same backbone pass as the global words). Each cell's feature is centred, whitened
    and cut to `dims` by PCA, L2-normalised, and given the nearest of `coarse` centroids, then the nearest of
    `fine` centroids of what is left (residual quantization): `coarse x fine` words. A query image is read
    again at each of `query_scales` (multiples of `size`: a crop of a document is a zoom of the query, a copy
    pasted small into another photo a shrink), one grid each. `weight`: the boost of local words against the
    global ones in a words query. k-gram windows over the code grid come from the tokenizer's KGramConfig.
    """

    stage: int = 4
    size: int | None = None
    dims: int = 64
    coarse: int = 256
    fine: int = 256
    query_scales: tuple[float, ...] = (0.43, 0.57, 0.71, 1.0, 1.29, 1.57, 2.0, 2.57)
    weight: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "query_scales", tuple(float(s) for s in self.query_scales))
        if self.stage < 0 or self.dims < 1 or self.coarse < 2 or self.fine < 1:
            raise ValueError(f"grid stage={self.stage} must be >= 0, dims={self.dims} >= 1, coarse={self.coarse} "
                             f">= 2 and fine={self.fine} >= 1")
        if self.size is not None and self.size < 32:
            raise ValueError(f"grid size={self.size} is too small; use 32 or more pixels, or None")
        if not self.query_scales or any(s <= 0 for s in self.query_scales) or self.weight < 0:
            raise ValueError(f"grid query_scales={self.query_scales} must be positive and weight={self.weight} >= 0")

    @property
    def vocab_size(self) -> int:
        return self.coarse * self.fine


@dataclass(frozen=True)
class ModelConfig:
    """What a trained model directory holds: a backbone name and its heads.

    Each word head is a field named as its entry in the registry of word heads (tokenizer/heads.py): global
    words from the lift head, k-gram words from the VQ head's code grid, local words from the grid head; an
    image's words are every present head's. The embedding comes from the lift head, else the Matryoshka head,
    else the pooled backbone feature.
    """

    backbone: str = "efficientnet_lite0"
    backbone_weights: str | None = "default"  # "default", a local file, or None (random)
    vq: VQConfig | None = field(default_factory=VQConfig)
    mrl: MatryoshkaConfig | None = None  # None: the embedding is the pooled backbone feature
    lift: LiftConfig | None = None
    grid: GridConfig | None = None

    def __post_init__(self) -> None:
        if self.vq is None and self.lift is None and self.grid is None:
            raise ValueError("a model needs a word head: a lift head, a grid head or a VQ head (k-gram words)")
        if self.lift is not None and self.lift.class_weight > 0 and self.mrl is None:
            raise ValueError("a lift head with class_weight > 0 reads the Matryoshka embedding: the model has none")


@dataclass(frozen=True)
class TokenizerConfig:
    """Everything that decides which words an image gets."""

    model: ModelConfig = field(default_factory=ModelConfig)
    kgram: KGramConfig = field(default_factory=KGramConfig)
    max_size: int = 224

    def __post_init__(self) -> None:
        if self.max_size < 32:
            raise ValueError(f"max_size={self.max_size} is too small; use 32 or more pixels")


@dataclass(frozen=True)
class IndexManifest:
    """`vqgram.json` beside an index: which backend and tokenizer made it."""

    backend: str
    tokenizer: TokenizerConfig
    model_path: str
    model_sha256: str
    vqgram_version: str


@dataclass(frozen=True)
class SuiteSet:
    """One set of an evaluation suite (paths relative to the suite file).

    db: a labelled folder (label = sub-folder name); queries: a query folder
    (default: leave-one-out over db); distractors: a folder whose images join
    the database unlabelled (they never match); max_queries: score a seeded
    sample of this many queries.
    """

    name: str
    db: str
    queries: str | None = None
    distractors: str | None = None
    max_queries: int | None = None


@dataclass(frozen=True)
class SuiteSpec:
    """An evaluation suite: its sets, the seed of every sample drawn for it, and the folder the SIFT
    baseline fits its vocabulary of `sift_words` words on (None: no SIFT column)."""

    sets: tuple[SuiteSet, ...]
    seed: int = 0
    sift_train: str | None = None
    sift_words: int = 20_000


def to_dict(obj: Any) -> dict:
    return dataclasses.asdict(obj)


def from_dict(cls: type[T], data: dict) -> T:
    """Build a (nested) config dataclass from a dict; unknown keys are an error."""
    kwargs = {}
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} setting(s): {', '.join(sorted(unknown))}")
    for name, value in data.items():
        ftype = names[name].type
        sub = _NESTED.get(ftype.removesuffix(" | None")) if isinstance(ftype, str) else None
        kwargs[name] = from_dict(sub, value) if sub and isinstance(value, dict) else value
    return cls(**kwargs)


def save_json(obj: Any, path: Path) -> None:
    write_atomic(path, json.dumps(to_dict(obj), indent=2, sort_keys=True) + "\n")


def load_json(cls: type[T], path: Path) -> T:
    return from_dict(cls, json.loads(Path(path).read_text()))


_NESTED = {
    "MatryoshkaConfig": MatryoshkaConfig,
    "KGramConfig": KGramConfig,
    "VQConfig": VQConfig,
    "LiftConfig": LiftConfig,
    "GridConfig": GridConfig,
    "ModelConfig": ModelConfig,
    "TokenizerConfig": TokenizerConfig,
}
