"""Matryoshka head: pooled backbone features -> one embedding whose prefixes all work.

Kusupati et al., "Matryoshka Representation Learning", NeurIPS 2022
(https://arxiv.org/abs/2205.13147): train one embedding z with a loss on
every nested prefix z[:, :m], m in a nesting list, so the first m dimensions
are a usable embedding by themselves. Here the head sits on frozen pooled
features (B, C) and is trained on cached features in minutes on a CPU.

Targets are either the backbone's own ImageNet probabilities (distillation:
no labels needed, the default of `vqgram train`) or folder labels.

At search time each prefix is L2-normalised on its own (prefix, then
renormalise); see `vqgram.searcher.funnel.prefix_normalize`.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import DEFAULT_NESTING, MatryoshkaConfig

__all__ = [
    "DEFAULT_NESTING",
    "MatryoshkaConfig",
    "MatryoshkaHead",
    "nested_loss",
    "relational_loss",
    "soft_targets",
    "fit_matryoshka",
]

class MatryoshkaHead(nn.Module):
    """(B, in_dim) pooled features -> (B, dim) embedding, plus per-prefix classifiers.

    Inputs are standardised with a per-channel mean/std kept as buffers
    (set by `fit_matryoshka` from the training features), so the head is
    self-contained: rebuild with `MatryoshkaHead(config)` and
    `load_state_dict`.
    """

    def __init__(self, config: MatryoshkaConfig):
        super().__init__()
        self.config = config
        c = config
        self.register_buffer("in_mean", torch.zeros(c.in_dim))
        self.register_buffer("in_std", torch.ones(c.in_dim))
        if c.hidden:
            self.proj = nn.Sequential(nn.Linear(c.in_dim, c.hidden), nn.GELU(), nn.Linear(c.hidden, c.dim))
        else:
            self.proj = nn.Linear(c.in_dim, c.dim)
        if c.efficient:
            self.classifier = nn.Linear(c.dim, c.num_classes)
        else:
            self.classifiers = nn.ModuleList(nn.Linear(m, c.num_classes) for m in c.nesting)

    def forward(self, pooled: Tensor) -> Tensor:
        """The embedding (B, dim), not normalised."""
        return self.proj((pooled - self.in_mean) / self.in_std)

    def prefix_logits(self, z: Tensor) -> list[Tensor]:
        """Logits of every nesting prefix z[:, :m], in nesting order."""
        if self.config.efficient:
            w, b = self.classifier.weight, self.classifier.bias
            return [F.linear(z[:, :m], w[:, :m], b) for m in self.config.nesting]
        return [clf(z[:, :m]) for clf, m in zip(self.classifiers, self.config.nesting)]


def nested_loss(
    logits: Sequence[Tensor],
    target: Tensor,
    weights: Sequence[float],
    temperature: float = 1.0,
) -> Tensor:
    """sum_m w_m * loss(logits_m, target).

    target: (B,) integer labels -> cross-entropy; or (B, K) probabilities
    (the teacher's softmax at `temperature`) -> KL(target || softmax(logits_m / T)) * T^2.
    KL and soft cross-entropy differ by the teacher's entropy, a constant, so
    their gradients are equal; KL is 0 at a perfect match.
    """
    if len(logits) != len(weights):
        raise ValueError(f"{len(logits)} prefix logits for {len(weights)} weights")
    hard = not torch.is_floating_point(target)
    total = logits[0].new_zeros(())
    for lg, w in zip(logits, weights):
        if w == 0:
            continue
        if hard:
            loss = F.cross_entropy(lg, target)
        else:
            logp = F.log_softmax(lg / temperature, dim=-1)
            loss = F.kl_div(logp, target, reduction="batchmean") * temperature**2
        total = total + w * loss
    return total


def relational_loss(z: Tensor, target_sim: Tensor, nesting: Sequence[int], temperature: float = 0.1) -> Tensor:
    """Mean over prefixes m of KL(softmax(target_sim / t) || softmax(cos(z[:, :m]) / t)), row-wise.

    Each row is one item's distribution over the other items of the batch
    (the diagonal is left out), as in relational / similarity distillation
    (Park et al., "Relational Knowledge Distillation", CVPR 2019;
    Tung & Mori, "Similarity-Preserving Knowledge Distillation", ICCV 2019).
    """
    b = z.shape[0]
    eye = torch.eye(b, dtype=torch.bool, device=z.device)
    # a finite mask (cosines lie in [-1, 1]) keeps 0 * log 0 out of the sums and their gradients
    target = F.softmax(target_sim.masked_fill(eye, -1e4) / temperature, dim=-1)
    total = z.new_zeros(())
    for m in nesting:
        zm = F.normalize(z[:, :m], dim=-1)
        logp = F.log_softmax((zm @ zm.T).masked_fill(eye, -1e4) / temperature, dim=-1)
        total = total + F.kl_div(logp, target, reduction="batchmean")
    return total / len(nesting)


def soft_targets(teacher_logits: Tensor, temperature: float) -> Tensor:
    """The teacher's probabilities at a temperature."""
    return F.softmax(teacher_logits.float() / temperature, dim=-1)


def fit_matryoshka(
    pooled: Tensor,
    targets: Tensor,
    config: MatryoshkaConfig,
    epochs: int = 30,
    lr: float = 1e-3,
    batch_size: int = 256,
    seed: int = 0,
    weight_decay: float = 1e-4,
    log_every: int = 0,
) -> MatryoshkaHead:
    """Train a head on cached pooled features (N, in_dim).

    targets: float (N, num_classes) teacher *logits* (softened with
    config.temperature) or integer (N,) labels. AdamW with a cosine learning
    rate schedule; deterministic for a seed. Returns the head in eval mode.
    """
    pooled = torch.as_tensor(pooled).float()
    targets = torch.as_tensor(targets)
    if pooled.ndim != 2 or pooled.shape[1] != config.in_dim:
        raise ValueError(f"pooled features of shape {tuple(pooled.shape)}; expected (N, {config.in_dim})")
    if targets.shape[0] != pooled.shape[0]:
        raise ValueError(f"{targets.shape[0]} targets for {pooled.shape[0]} feature rows")
    soft = torch.is_floating_point(targets)
    if soft:
        if targets.ndim != 2 or targets.shape[1] != config.num_classes:
            raise ValueError(
                f"teacher logits of shape {tuple(targets.shape)}; expected (N, {config.num_classes})"
            )
        targets = soft_targets(targets, config.temperature)
    else:
        if config.relational_weight > 0 and config.relational_target == "teacher":
            raise ValueError("relational_target='teacher' needs teacher logits, not integer labels")
        targets = targets.long()
        if targets.min() < 0 or targets.max() >= config.num_classes:
            raise ValueError(f"labels must lie in 0..{config.num_classes - 1}")

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    head = MatryoshkaHead(config)
    head.in_mean.copy_(pooled.mean(0))
    head.in_std.copy_(pooled.std(0).clamp_min(1e-6))
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    n = pooled.shape[0]
    steps = epochs * math.ceil(n / batch_size)
    warm = max(1, steps // 20)

    def shape(step: int) -> float:  # linear warm-up, then cosine decay to 0
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, shape)
    head.train()
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=gen)
        running = 0.0
        for start in range(0, n, batch_size):
            idx = perm[start : start + batch_size]
            z = head(pooled[idx])
            loss = nested_loss(head.prefix_logits(z), targets[idx], config.weights, config.temperature)
            if config.relational_weight > 0:
                if config.relational_target == "self":
                    zf = F.normalize(z.detach(), dim=-1)
                    sim, sizes = zf @ zf.T, config.nesting[:-1] or config.nesting
                else:
                    pt = F.normalize(targets[idx], dim=-1)
                    sim, sizes = pt @ pt.T, config.nesting
                loss = loss + config.relational_weight * relational_loss(
                    z, sim, sizes, config.relational_temperature
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running += loss.item() * len(idx)
        if log_every and (epoch + 1) % log_every == 0:
            print(f"  epoch {epoch + 1}/{epochs}  loss {running / n:.4f}")
    return head.eval()
