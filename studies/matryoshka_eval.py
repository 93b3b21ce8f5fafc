"""Matryoshka head vs PCA vs raw pooled features on imagenette, leave-one-out.

    python -m studies.matryoshka_eval [--data DIR] [--cache /tmp/vqgram_feats.npz]
        [--epochs 30] [--save /tmp/mrl_head.pt]

1. Pooled features (1280-d) and ImageNet logits of every image under
   DATA/<wnid>/*.JPEG from EfficientNet-Lite0 (cached to --cache).
2. A Matryoshka head distilled from the backbone's own ImageNet probabilities
   (no folder labels are used for training), a PCA projection of the pooled
   features, and the raw pooled features.
3. Leave-one-out retrieval, relevant = same folder: every image queries all
   the others by exact cosine on the first d dimensions; mAP over the full
   ranking and MAP@100, for every d of the nesting list. Then the funnel
   (shortlist at a low d, rerank at full d) next to full-dimension search.
Prints numbers; not a test.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch


DATA = Path("/work/shared/data/imagenette/train")


# --- features ----------------------------------------------------------------


class _Folder(torch.utils.data.Dataset):
    def __init__(self, paths: list[Path], size: int, mean, std, interpolation: str):
        self.paths, self.size = paths, size
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)
        self.interpolation = interpolation

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        from PIL import Image

        with Image.open(self.paths[i]) as im:
            im = im.convert("RGB")
            if im.size != (self.size, self.size):
                resample = getattr(Image.Resampling, self.interpolation.upper())
                im = im.resize((self.size, self.size), resample)
            x = torch.from_numpy(np.asarray(im, dtype=np.float32).copy()).permute(2, 0, 1) / 255.0
        return (x - self.mean) / self.std


def extract(data: Path, cache: Path, batch_size: int = 64) -> dict[str, np.ndarray]:
    """Pooled features, logits and labels of every image; cached as .npz."""
    if cache.exists():
        z = np.load(cache, allow_pickle=False)
        return {k: z[k] for k in z.files}
    from vqgram.tokenizer.backbones import create_backbone, get_spec

    spec = get_spec("efficientnet_lite0")
    model = create_backbone("efficientnet_lite0").to(memory_format=torch.channels_last)
    classes = sorted(p.name for p in data.iterdir() if p.is_dir())
    paths, labels = [], []
    for c, name in enumerate(classes):
        for p in sorted((data / name).glob("*.JPEG")):
            paths.append(p)
            labels.append(c)
    loader = torch.utils.data.DataLoader(
        _Folder(paths, 224, spec.mean, spec.std, spec.interpolation),
        batch_size=batch_size, num_workers=2, shuffle=False,
    )
    pooled, logits = [], []
    t0 = time.perf_counter()
    with torch.inference_mode():
        for i, x in enumerate(loader):
            f = model.forward_head(model.forward_features(x.to(memory_format=torch.channels_last)), pre_logits=True)
            pooled.append(f.float().numpy())
            logits.append(model.classifier(f).float().numpy())
            if i % 20 == 0:
                done = sum(len(p) for p in pooled)
                print(f"  features {done}/{len(paths)}  {done / (time.perf_counter() - t0):.0f} img/s", file=sys.stderr)
    out = {
        "pooled": np.concatenate(pooled),
        "logits": np.concatenate(logits),
        "labels": np.asarray(labels, dtype=np.int64),
        "classes": np.asarray(classes),
        "paths": np.asarray([str(p) for p in paths]),
    }
    np.savez(cache, **out)
    print(f"  extracted {len(paths)} images in {time.perf_counter() - t0:.0f} s -> {cache}", file=sys.stderr)
    return out


# --- leave-one-out retrieval -------------------------------------------------


def loo_rankings(emb: np.ndarray, chunk: int = 1024):
    """Yield (rows, ranked ids) of every query against all others: cosine, order (-score, id)."""
    from vqgram.searcher.funnel import prefix_normalize

    x = torch.from_numpy(prefix_normalize(emb))
    n = x.shape[0]
    for s in range(0, n, chunk):
        sc = x[s : s + chunk] @ x.T
        rows = torch.arange(s, min(s + chunk, n))
        sc[torch.arange(len(rows)), rows] = -float("inf")  # the query itself goes last, then is dropped
        # stable sort on -score keeps equal scores in id order
        order = torch.sort(-sc, dim=1, stable=True).indices[:, : n - 1]
        yield rows.numpy(), order.numpy()


def loo_scores(emb: np.ndarray, labels: np.ndarray, k: int = 100) -> tuple[float, float]:
    """(mAP, MAP@k) of leave-one-out retrieval, relevant = same label."""
    from vqgram.eval.metrics import average_precision, average_precision_at_k

    r = np.bincount(labels)[labels] - 1
    ap, apk = [], []
    for rows, order in loo_rankings(emb):
        rel = labels[order] == labels[rows][:, None]
        ap.append(average_precision(rel, r[rows]))
        apk.append(average_precision_at_k(rel, r[rows], k))
    ap, apk = np.concatenate(ap), np.concatenate(apk)
    return float(np.nanmean(ap)), float(np.nanmean(apk))


def loo_funnel_scores(emb: np.ndarray, labels: np.ndarray, low: int, shortlist: int, k: int = 100,
                      chunk: int = 1024) -> tuple[float, float]:
    """Funnel as one full ranking: the best `shortlist` by the low-d prefix, reranked at full
    width, then everything else in low-d order. (mAP, MAP@k), leave-one-out."""
    from vqgram.eval.metrics import average_precision, average_precision_at_k
    from vqgram.searcher.funnel import prefix_normalize

    r = np.bincount(labels)[labels] - 1
    lo = torch.from_numpy(prefix_normalize(emb, low))
    hi = torch.from_numpy(prefix_normalize(emb))
    n = lo.shape[0]
    ap, apk = [], []
    for s in range(0, n, chunk):
        rows = torch.arange(s, min(s + chunk, n))
        idx = torch.arange(len(rows))
        sl = lo[rows] @ lo.T
        sl[idx, rows] = -float("inf")
        order = torch.sort(-sl, dim=1, stable=True).indices[:, : n - 1]
        head = order[:, :shortlist]
        # full-width cosines of the shortlist (a full row product is cheaper than a gather at this N)
        sh = torch.gather(hi[rows] @ hi.T, 1, head)
        # rerank the shortlist by (-full score, id)
        o = np.lexsort((head.numpy(), -sh.numpy()), axis=1)
        head = np.take_along_axis(head.numpy(), o, axis=1)
        ranked = np.concatenate([head, order[:, shortlist:].numpy()], axis=1)
        rel = labels[ranked] == labels[rows.numpy()][:, None]
        ap.append(average_precision(rel, r[rows.numpy()]))
        apk.append(average_precision_at_k(rel, r[rows.numpy()], k))
    return float(np.nanmean(np.concatenate(ap))), float(np.nanmean(np.concatenate(apk)))


# --- the experiment ----------------------------------------------------------


def head_embedding(head, pooled: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return head(torch.from_numpy(pooled)).numpy()


def main() -> None:
    from vqgram.tokenizer.matryoshka import MatryoshkaConfig, fit_matryoshka
    from vqgram.tokenizer.pca import PCAProjection

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/vqgram_feats.npz"))
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--hidden", type=int, default=0, help="0: linear head; else MLP hidden width")
    ap.add_argument("--efficient", action="store_true")
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--relational-weight", type=float, default=1.0)
    ap.add_argument("--relational-target", choices=("self", "teacher"), default="teacher")
    ap.add_argument("--relational-temperature", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: on a shared 2-core box more threads ran 20x slower)")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", type=Path, default=None, help="torch.save the head's state dict + config here")
    ap.add_argument("--funnel-low", type=int, default=16)
    ap.add_argument("--shortlists", type=str, default="200,1000,2000,4000,6000")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    feats = extract(args.data, args.cache)
    pooled, logits, labels = feats["pooled"].astype(np.float32), feats["logits"], feats["labels"]
    n = len(labels)
    print(f"{n} images, {len(feats['classes'])} labels, pooled {pooled.shape[1]}-d")

    t0 = time.perf_counter()
    cfg = MatryoshkaConfig(in_dim=pooled.shape[1], dim=args.dim, num_classes=logits.shape[1],
                           hidden=args.hidden, efficient=args.efficient, temperature=args.temperature,
                           relational_weight=args.relational_weight, relational_target=args.relational_target,
                           relational_temperature=args.relational_temperature)
    head = fit_matryoshka(torch.from_numpy(pooled), torch.from_numpy(logits).float(), cfg,
                          epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                          weight_decay=args.weight_decay)
    print(f"head trained in {time.perf_counter() - t0:.0f} s: {cfg}")
    emb = head_embedding(head, pooled)
    pca = PCAProjection.fit(pooled)
    pca_emb = pca.transform(pooled)

    dims = [d for d in cfg.nesting]
    rows = []
    print(f"\nleave-one-out, relevant = same label; mAP (full ranking) / MAP@100")
    print(f"{'d':>6s} {'head mAP':>9s} {'head@100':>9s} {'PCA mAP':>9s} {'PCA@100':>9s}")
    for d in dims:
        h = loo_scores(emb[:, :d], labels)
        p = loo_scores(pca_emb[:, :d], labels) if d <= pca_emb.shape[1] else (float("nan"),) * 2
        rows.append((d, h, p))
        print(f"{d:6d} {h[0]:9.4f} {h[1]:9.4f} {p[0]:9.4f} {p[1]:9.4f}")
    raw = loo_scores(pooled, labels)
    print(f"{'raw':>6s} pooled {pooled.shape[1]}-d: mAP {raw[0]:.4f}  MAP@100 {raw[1]:.4f}")
    teach = loo_scores(logits, labels)
    print(f"{'ref':>6s} teacher logits {logits.shape[1]}-d: mAP {teach[0]:.4f}  MAP@100 {teach[1]:.4f}")

    full = loo_scores(emb, labels)
    print(f"\nfunnel on the head: shortlist by the first {args.funnel_low} dims, rerank at {cfg.dim}")
    print(f"{'search':>28s} {'mAP':>8s} {'MAP@100':>8s}")
    print(f"{f'exact {cfg.dim}-d':>28s} {full[0]:8.4f} {full[1]:8.4f}")
    for sl in [int(v) for v in args.shortlists.split(",")]:
        f = loo_funnel_scores(emb, labels, args.funnel_low, sl)
        print(f"{f'funnel {args.funnel_low}->{cfg.dim}, shortlist {sl}':>28s} {f[0]:8.4f} {f[1]:8.4f}")

    # the same funnel through the searcher module (top 100 only): MAP@100 must agree
    from vqgram.eval.metrics import mean_average_precision_at_k
    from vqgram.searcher.exact import ExactIndex
    from vqgram.searcher.funnel import FunnelStage, funnel_search

    index = ExactIndex(emb, prefix_dims=(args.funnel_low,))
    t0 = time.perf_counter()
    ids, _ = funnel_search(index, emb, 101, [FunnelStage(args.funnel_low, 1000)])
    t_f = time.perf_counter() - t0
    ids = np.stack([row[row != q][:100] for q, row in enumerate(ids)])
    r = np.bincount(labels)[labels] - 1
    m = mean_average_precision_at_k(labels[ids] == labels[:, None], r, 100)
    t0 = time.perf_counter()
    index.search(emb, 101)
    t_e = time.perf_counter() - t0
    print(f"funnel_search 16->{cfg.dim} shortlist 1000: MAP@100 {m.value:.4f} "
          f"({m.excluded} queries excluded); {t_f / n * 1e3:.2f} ms/query vs exact {t_e / n * 1e3:.2f} ms/query "
          f"at N={n}")

    if args.save:
        torch.save({"config": cfg.to_dict(), "state_dict": head.state_dict(),
                    "recipe": {k: str(v) for k, v in vars(args).items()}}, args.save)
        print(f"\nsaved head -> {args.save}")


if __name__ == "__main__":
    if "--extract-only" in sys.argv:
        extract(DATA, Path("/tmp/vqgram_feats.npz"))
    else:
        main()
