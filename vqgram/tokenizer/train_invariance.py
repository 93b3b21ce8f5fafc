"""Train the lift head's invariance MLP: an image and its edited copies close, other images apart (no labels).

The linear projection (`fit_lift`: learned whitening, then PCA) damps what edits move on average; a
residual MLP on the centred descriptor, added to the projection and zero at the start (so training starts
from the linear embedding), learns what an average misses. Each step takes a batch of edited copies:

- InfoNCE (temperature `invariance_temperature`) between each copy's original and the copy, against the
  batch's other copies (other copies of the same original left out) and as many random training images;
- `invariance_relational` x relational distillation: the KL divergence between how the linear embedding and
  the trained one rank those training images among themselves (softmax over cosines at temperature 0.1),
  which keeps the neighbourhoods (classes, species, textures) where the linear projection had them.

AdamW (lr 1e-3, weight decay 1e-4), batches of 256, seeded by the config's seed. The MLP is rounded to
float16 as it is stored, and its mean output on the training images is kept for centring the words.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from .lift import LiftHead

BATCH = 256
RELATION_TEMPERATURE = 0.1
_MASKED = -1e9  # a finite "minus infinity": kl_div would turn 0 x -inf into NaN


def train_invariance(lift: LiftHead, x: torch.Tensor, originals: torch.Tensor, copies: torch.Tensor,
                     owner: torch.Tensor) -> dict:
    """Fit `lift.residual` on descriptors: `x` (N, in_dim) training images, `originals` (n, in_dim), their
    edited `copies` (m, in_dim), `owner` (m,) the row of each copy's original. Returns facts for the card."""
    c = lift.config
    start = time.time()
    x, originals, copies = x.float(), originals.float(), copies.float()
    basis, centre = lift.basis.float(), lift.mean.float() @ lift.basis.float()

    def embed(d: torch.Tensor) -> torch.Tensor:
        return F.normalize(d @ basis + lift.residual_output(d) - centre, dim=-1)

    linear = F.normalize((x - lift.mean.float()) @ basis, dim=-1)
    eye = torch.eye(BATCH, dtype=torch.bool)
    first_nce = None
    with torch.random.fork_rng():
        torch.manual_seed(c.seed)
        lift.residual[0].reset_parameters()
        torch.nn.init.zeros_(lift.residual[2].weight)
        torch.nn.init.zeros_(lift.residual[2].bias)
        optimizer = torch.optim.AdamW(lift.residual.parameters(), lr=1e-3, weight_decay=1e-4)
        for _ in range(c.invariance_epochs):
            for batch in torch.randperm(len(copies)).split(BATCH):
                others = torch.randint(0, len(x), (BATCH,))
                u, v, n = embed(originals[owner[batch]]), embed(copies[batch]), embed(x[others])
                same = owner[batch][:, None] == owner[batch][None, :]
                sibling = torch.cat([same & ~torch.eye(len(batch), dtype=torch.bool),  # not a negative
                                     torch.zeros(len(batch), BATCH, dtype=torch.bool)], dim=1)
                logits = (u @ torch.cat([v, n]).T / c.invariance_temperature).masked_fill(sibling, _MASKED)
                nce = F.cross_entropy(logits, torch.arange(len(batch)))
                teacher = (linear[others] @ linear[others].T / RELATION_TEMPERATURE).masked_fill(eye, _MASKED)
                student = (n @ n.T / RELATION_TEMPERATURE).masked_fill(eye, _MASKED)
                relational = F.kl_div(F.log_softmax(student, -1), F.softmax(teacher, -1), reduction="batchmean")
                loss = nce + c.invariance_relational * relational
                first_nce = nce.item() if first_nce is None else first_nce
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    with torch.no_grad():
        for p in lift.residual.parameters():
            p.copy_(p.half().float())  # as stored (model._HALF_PRECISION)
        lift.residual_mean.copy_(torch.cat([lift.residual_output(chunk.double()) for chunk in x.split(1024)])
                                 .mean(0).float())
    return {"pairs": len(copies), "epochs": c.invariance_epochs, "first_nce": round(first_nce, 4),
            "final_nce": round(nce.item(), 4),
            "final_relational": round(relational.item(), 5), "seconds": round(time.time() - start, 1)}
