"""The lift head: a global descriptor per image -> a dense embedding and sparse "lifted" words.

Descriptor: GeM-pooled backbone features (Radenović et al., TPAMI 2019), which
keep what tells two photos apart, beside the class-distilled Matryoshka
embedding, which makes ImageNet classes cluster (weights in `LiftConfig`).
Dense: the descriptor in its fitted basis, cut to `dims`: its PCA, after
whitening the GeM block against edited copies where `whiten_pairs` asks
(`train_lift.py`), one matrix either way (prefixes ordered by variance, so
they nest like a Matryoshka embedding), plus, where `invariance_hidden` asks,
a residual MLP trained to keep edited copies together (`train_invariance.py`).
Words: the centred PCA coordinates, L2-normalised, are lifted by a fixed
Gaussian matrix to `atoms` dimensions and the `active` largest become the
image's words ("sparse lifting", the fly-olfaction hash of Dasgupta et al.,
Science 2017): close descriptors share most of their winning atoms, far ones
almost none. 65,536 words with 384 per image keep posting lists short: an
image's median word is in ~1 % of a photo collection (imagenette: 0.78 % for
the packaged model), against 16.5 % for the k-gram words of 64-code VQ heads.
Nothing here sees a label (the whitening of `train_lift` sees edited copies).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..cache_dir import cache_dir
from ..config import LiftConfig, ModelConfig
from ..files import atomic_file
from .device import native_bfloat16_cpu
from .heads import FeatureMaps, HeadContext, HeadWords, QueryRead, WordHead, register
from .vocabulary import Vocabulary


# Even, so every Box-Muller pair stays inside one chunk.
_ATOM_CHUNK = 1 << 22


def gaussian_atoms(rows: int, atoms: int, seed: int) -> torch.Tensor:
    """(rows, atoms) standard normal matrix, identical on every platform and numpy version.

    Box-Muller over PCG64's raw 64-bit stream (whose values numpy keeps stable),
    since numpy's `standard_normal` and torch's `randn` may change algorithms;
    the matrix is rebuilt from the seed instead of shipped (256 MB as float32 at
    the default size). Built in chunks so loading a model never holds more than
    the matrix plus a few tens of MB of float64 scratch.
    """
    n = rows * atoms
    bits = np.random.PCG64(seed)
    z = np.empty(n + n % 2, np.float32)
    for start in range(0, len(z), _ATOM_CHUNK):
        raw = bits.random_raw(min(_ATOM_CHUNK, len(z) - start))
        u = ((raw >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0 ** -53  # in (0, 1)
        r, theta = np.sqrt(-2.0 * np.log(u[0::2])), 2 * np.pi * u[1::2]
        z[start:start + len(u):2], z[start + 1:start + len(u):2] = r * np.cos(theta), r * np.sin(theta)
    return torch.from_numpy(z[:n].reshape(rows, atoms))


def lift_atoms(rows: int, atoms: int, seed: int, root: Path | None = None,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """`gaussian_atoms` as the lift head holds them, (atoms, rows), kept in `root` ($VQGRAM_CACHE/atoms).

    Building the default 65,536 x 1,024 matrix takes ~4 s, a third of a one-image
    `vqgram search`; the file (256 MB) is mapped copy-on-write instead, so every
    process on a machine (encode workers, a server) shares its pages. A file
    that is missing, of another shape or unreadable is built again; where the
    cache cannot be written, the matrix stays in memory only. `dtype` bfloat16
    gives the float32 matrix rounded (its own 128 MB file: rounding takes ~0.5 s).
    """
    name = f"gaussian-{atoms}x{rows}-seed{seed}"
    if dtype == torch.bfloat16:  # numpy has no bfloat16: the file holds its bits as uint16
        bits = _cached(root, f"{name}-bf16.npy", (atoms, rows), np.uint16,
                       lambda: lift_atoms(rows, atoms, seed, root).bfloat16().view(torch.uint16))
        return bits.view(torch.bfloat16)
    if dtype != torch.float32:
        raise ValueError(f"lift atoms come in float32 or bfloat16, not {dtype}")
    return _cached(root, f"{name}.npy", (atoms, rows), np.float32,
                   lambda: gaussian_atoms(rows, atoms, seed).T.contiguous())


def _cached(root: Path | None, name: str, shape: tuple[int, int], dtype, build) -> torch.Tensor:
    """The array in `root`/`name` when it has this shape and dtype (mapped copy-on-write), else `build()`
    written there atomically (a concurrent reader sees a whole file or none)."""
    path = (root or cache_dir("atoms")) / name
    try:
        cached = np.load(path, mmap_mode="c")
        if cached.shape == shape and cached.dtype == dtype:
            return torch.from_numpy(cached)
    except (OSError, ValueError):
        pass
    built = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as f:
            np.save(f, built.numpy())
    except OSError:  # a read-only cache: built again next time
        pass
    return built


# Extra candidates taken from the fast (bf16 or float32) lift before the exact float64 re-score picks the
# words. bf16 scores err by ~0.003 (std); over 1,050 real images (imagenette, dtd, omniglot, faces) the
# true words needed up to 27 extra candidates at 384 words an image and 54 at 1,536 (float32: 1).
_MARGIN = 128


def max_word_count(config: LiftConfig) -> int:
    """The most words a lift head of `config` can give an image (its candidates need a margin of atoms)."""
    return config.atoms - _MARGIN


def check_word_count(config: LiftConfig, active: int) -> int:
    """`active` when a lift head of `config` can give an image that many words; else ValueError."""
    if not 1 <= active <= max_word_count(config):
        raise ValueError(f"{active} words an image: choose 1 to {max_word_count(config)} (this model's images "
                         f"get {config.active})")
    return active


@register
class LiftHead(WordHead):
    """(feature map, class embedding) -> (embedding (B, dims), word counts (B, atoms)).

    `mean` and `basis` (the PCA of training descriptors) are fitted by `fit_lift`, the optional `residual`
    MLP and its mean output `residual_mean` by `train_invariance`;
    the atoms are a non-persistent buffer rebuilt from the config's seed (`lift_atoms`).

    An image must get the same words in any batch and memory layout (a cached
    feature map and a fresh one, a query and an indexed copy), but float32
    matrix products round differently by batch size, enough to move a term
    frequency across a rounding step. So the projections run in float64, the
    lift picks `active + _MARGIN` candidates in bfloat16 (where the CPU multiplies
    it natively, `native_bfloat16_cpu`; else float32), and the words and their
    frequencies come from an exact float64 re-score of those candidates alone.
    """

    name = "lift"

    def __init__(self, config: LiftConfig, channels: int, class_dim: int):
        super().__init__()
        self.config = config
        self.words = LiftedWords(config)
        in_dim = channels + (class_dim if config.class_weight > 0 else 0)
        if config.dims > in_dim:
            raise ValueError(f"lift dims={config.dims} exceeds the descriptor width {in_dim}")
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("basis", torch.eye(in_dim)[:, : config.dims].contiguous())
        self.residual = None  # the trained invariance MLP, added to the projection (train_invariance.py)
        if config.invariance_hidden:
            self.residual = nn.Sequential(nn.Linear(in_dim, config.invariance_hidden), nn.GELU(),
                                          nn.Linear(config.invariance_hidden, config.dims))
            self.register_buffer("residual_mean", torch.zeros(config.dims))  # its mean output on the fit images
        self.register_buffer("atoms", lift_atoms(config.dims, config.atoms, config.seed), persistent=False)
        self.register_buffer("atoms_bf16", lift_atoms(config.dims, config.atoms, config.seed, dtype=torch.bfloat16)
                             if native_bfloat16_cpu() else None, persistent=False)

    @classmethod
    def build(cls, config: ModelConfig, spec) -> "LiftHead":
        return cls(config.lift, spec.channels, config.mrl.dim if config.mrl else 0)

    def encode(self, maps: FeatureMaps, context: HeadContext, query: QueryRead | None = None) -> HeadWords:
        """The global words (a query's: `query.words` of them) and the embedding, from the final map."""
        embedding, counts = self(self.descriptor(maps.final, context.class_embedding()),
                                 query.words if query is not None else None)
        return HeadWords(self.words.to_dicts(counts), embedding)

    def descriptor(self, fmap: torch.Tensor, class_embedding: torch.Tensor | None) -> torch.Tensor:
        """(B, C, H, W) feature map and (B, D) class embedding -> (B, in_dim) descriptor, L2-normalised."""
        c = self.config
        p = c.gem_p
        gem = F.normalize(fmap.float().clamp(min=1e-6).pow(p).mean(dim=(2, 3)).pow(1.0 / p), dim=-1)
        if c.class_weight == 0:
            return gem
        w = c.class_weight
        return torch.cat([(1 - w * w) ** 0.5 * gem, w * F.normalize(class_embedding.float(), dim=-1)], dim=-1)

    def forward(self, descriptor: torch.Tensor, active: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """`active` words an image instead of the config's: a query's multiple assignment. Its strongest
        `config.active` words and their frequencies are exactly an indexed image's (frequencies are relative
        to the strongest atom), the rest are the next atoms down."""
        c = self.config
        active = c.active if active is None else check_word_count(c, active)
        projected, centred = self.coordinates(descriptor)
        embedding = F.normalize(projected, dim=-1).float()
        fast = self.atoms if self.atoms_bf16 is None else self.atoms_bf16
        candidates = (centred.to(fast.dtype) @ fast.T).topk(active + _MARGIN, dim=-1).indices
        top = self._rescore(candidates, centred).topk(active, dim=-1)
        strength = top.values / top.values[:, :1].clamp(min=1e-12)
        tf = (strength * c.levels).round().clamp(min=1).long()
        counts = torch.zeros(len(descriptor), c.atoms, dtype=torch.long, device=descriptor.device)
        return embedding, counts.scatter_(1, candidates.gather(1, top.indices), tf)

    def coordinates(self, descriptor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """float64 (B, dims): the projected descriptor (the embedding before its L2 norm) and the centred,
        L2-normalised coordinates the atoms lift."""
        basis = self.basis.double()
        projected = descriptor.double() @ basis
        centre = self.mean.double() @ basis
        if self.residual is not None:
            projected = projected + self.residual_output(descriptor.double())
            centre = centre + self.residual_mean.double()
        return projected, F.normalize(projected - centre, dim=-1)

    def residual_output(self, descriptor: torch.Tensor) -> torch.Tensor:
        """The invariance MLP on centred descriptors, in the descriptors' dtype (float64 when encoding, so
        an image's words cannot depend on its batch; float32 when training)."""
        first, last = self.residual[0], self.residual[2]
        dtype = descriptor.dtype
        hidden = F.gelu(F.linear(descriptor - self.mean.to(dtype), first.weight.to(dtype), first.bias.to(dtype)))
        return F.linear(hidden, last.weight.to(dtype), last.bias.to(dtype))

    def _rescore(self, candidates: torch.Tensor, centred: torch.Tensor) -> torch.Tensor:
        """(B, K) float64 scores of each image's candidate atoms: one matrix-vector product per image, so
        the result cannot depend on the batch."""
        return torch.stack([torch.mv(self.atoms.index_select(0, k).double(), v) for k, v in zip(candidates, centred)])


class LiftedWords(Vocabulary):
    """The lift head's vocabulary: word `l{atom}` (zero-padded to five digits) for each atom."""

    def __init__(self, config: LiftConfig):
        super().__init__()
        self.config = config
        self.vocab_size = config.atoms
        self._width = max(5, len(str(config.atoms - 1)))
        self._pattern = re.compile(r"l(\d+)")

    def count(self, tokens: torch.Tensor) -> torch.Tensor:
        """The lift head already counts its words: check the shape and pass them on."""
        if tokens.dim() != 2 or tokens.shape[1] != self.vocab_size:
            raise ValueError(f"expected lifted word counts of shape (B, {self.vocab_size}), got {tuple(tokens.shape)}")
        return tokens

    def _names(self) -> list[str]:
        return [f"l{a:0{self._width}d}" for a in range(self.vocab_size)]

    def _id(self, match: re.Match) -> int | None:
        atom = int(match.group(1))
        return atom if atom < self.vocab_size and len(match.group(1)) == self._width else None
