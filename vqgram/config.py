"""Every setting as a frozen dataclass, saved as JSON beside each index and model.

An index records the tokenizer that made it (`IndexManifest`), so opening it
with another tokenizer fails with a sentence instead of returning nonsense.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

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


@dataclass(frozen=True)
class ModelConfig:
    """What a trained model directory holds: a backbone name and its heads."""

    backbone: str = "efficientnet_lite0"
    backbone_weights: str | None = "default"  # "default", a local file, or None (random)
    vq: VQConfig = field(default_factory=VQConfig)


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
        sub = _NESTED.get(ftype) if isinstance(ftype, str) else None
        kwargs[name] = from_dict(sub, value) if sub and isinstance(value, dict) else value
    return cls(**kwargs)


def save_json(obj: Any, path: Path) -> None:
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(to_dict(obj), indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def load_json(cls: type[T], path: Path) -> T:
    return from_dict(cls, json.loads(Path(path).read_text()))


_NESTED = {
    "KGramConfig": KGramConfig,
    "VQConfig": VQConfig,
    "ModelConfig": ModelConfig,
    "TokenizerConfig": TokenizerConfig,
}
