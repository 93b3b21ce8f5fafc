"""Which linear projection of the lift descriptor serves the whole suite best?

`extract` writes each suite set's GeM and class-embedding vectors (database
and queries) and those of a training copy set (`vqgram make-copies` of
imagenette with another seed) to one .npz per set, through the feature cache.
`score` ranks every set in numpy by cosine (dense, centred on the set's
database mean like the searcher) and by BM25 over lifted words, for each
projection: today's PCA, and "learned whitening" from matching pairs
(Radenović et al., TPAMI 2019, after Mikolajczyk & Matas 2007): whiten by the
covariance of an image's descriptor minus its edited copy's, then rotate to
the principal axes of all descriptors in that space. No labels are used.

    python -m studies.whitening_study extract --train runs/lw-train --out runs/study
    python -m studies.whitening_study score --out runs/study
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from vqgram.eval import metrics
from vqgram.eval.datasets import load_dataset, query_plan, sample_queries
from vqgram.eval.gem import gem
from vqgram.eval.suite import load_suite
from vqgram.images import ImageFile, probe
from vqgram.tokenizer.encoder import Tokenizer
from vqgram.tokenizer.feature_cache import FeatureCache, default_root, feature_maps
from vqgram.tokenizer.lift import gaussian_atoms


@torch.inference_mode()
def vectors(tok: Tokenizer, paths: list[str], cache: FeatureCache) -> tuple[np.ndarray, np.ndarray]:
    """(N, C) GeM and (N, D) class embeddings, both L2-normalised."""
    files = [probe(Path(p), Path(p).parent) for p in paths]
    assert all(isinstance(f, ImageFile) for f in files)
    g = np.zeros((len(files), tok.spec.channels), np.float32)
    c = np.zeros((len(files), 1024), np.float32)
    for ok, fmap, _ in feature_maps(tok.model, files, tok.config.max_size, cache=cache):
        g[ok] = gem(fmap).numpy()
        c[ok] = F.normalize(tok.model._class_embedding(fmap).float(), dim=-1).numpy()
    return g, c


def extract(args) -> None:
    tok = Tokenizer.from_model()
    cache = FeatureCache(default_root(), tok.model.config, tok.config.max_size)
    spec = load_suite()  # the development suite, from the repository root
    sets = [(s.name, s.db, s.queries, s.distractors, s.max_queries) for s in spec.sets]
    sets.append(("train", str(Path(args.train) / "db"), str(Path(args.train) / "queries"), None, None))
    args.out.mkdir(parents=True, exist_ok=True)
    for name, db, queries, distractors, max_queries in sets:
        target = args.out / f"{name}.npz"
        if target.exists():
            continue
        ds = load_dataset(Path(db), queries=Path(queries) if queries else None,
                          distractors=Path(distractors) if distractors else None)
        if max_queries:
            ds = sample_queries(ds, max_queries, spec.seed)
        plan = query_plan(ds)
        g, c = vectors(tok, [i.path for i in ds.items], cache)
        if ds.queries is None:
            qg, qc = g[plan.self_ids], c[plan.self_ids]
        else:
            qg, qc = vectors(tok, [q.path for q in plan.queries], cache)
        np.savez(target, g=g, c=c, qg=qg, qc=qc, self_ids=plan.self_ids, exclude=plan.exclude_self,
                 qlab=plan.query_labels, dblab=plan.db_labels, nrel=plan.n_relevant)
        print(name, len(g), len(qg), flush=True)


def descriptor(g: np.ndarray, c: np.ndarray, w: float) -> np.ndarray:
    return np.concatenate([np.sqrt(1 - w * w) * g, w * c], axis=1).astype(np.float64)


def pca(x: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    return pca_after(x, np.eye(x.shape[1]), dims)


def learned_whitening(x: np.ndarray, diff: np.ndarray, dims: int, shrink: float,
                      power: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """mean and (in, dims) projection: C_S^-power, then the principal axes of the whitened descriptors."""
    return pca_after(x, whitener(diff, shrink, power), dims)


def whitener(diff: np.ndarray, shrink: float, power: float) -> np.ndarray:
    """C_S^-power of the pair differences' covariance, shrunk toward its mean eigenvalue."""
    cs = diff.T @ diff / len(diff)
    cs = (1 - shrink) * cs + shrink * np.trace(cs) / len(cs) * np.eye(len(cs))
    val, vec = np.linalg.eigh(cs)
    return vec @ np.diag(val.clip(1e-12) ** -power) @ vec.T


def gem_whitening(x: np.ndarray, diff: np.ndarray, dims: int, shrink: float, power: float):
    """Whiten the GeM block only (scaled to keep its mean centred norm), keep the class block, then PCA."""
    c = 1280
    wg = whitener(diff[:, :c], shrink, power)
    xc = x[:, :c] - x[:, :c].mean(0)
    scale = np.linalg.norm(xc, axis=1).mean() / np.linalg.norm(xc @ wg, axis=1).mean()
    w = np.eye(x.shape[1])
    w[:c, :c] = scale * wg
    return pca_after(x, w, dims)


def pca_after(x: np.ndarray, w: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """mean and (in, dims) projection: `w`, then the principal axes of the descriptors in that space."""
    mean = x.mean(0)
    y = (x - mean) @ w
    val, vec = np.linalg.eigh(np.cov(y.T))
    return mean, w @ vec[:, np.argsort(-val)[:dims]]


def words(coords: np.ndarray, atoms: torch.Tensor, active: int = 384, tf_spec: str = "ratio:10"):
    """Lifted words as a sparse (N, atoms) tf matrix. tf_spec SHAPE:LEVELS: "ratio" as the lift head makes
    them (strength / strongest), "margin" (strength above the next, unkept atom's, over the strongest's),
    "powP" (ratio to the power P)."""
    shape, levels = tf_spec.split(":")
    z = torch.from_numpy(coords / np.linalg.norm(coords, axis=1, keepdims=True)).float() @ atoms
    top = z.topk(active + 1, dim=-1)
    v, cut, kept = top.values[:, :active], top.values[:, active:], top.indices[:, :active]
    rel = (v - cut) / (v[:, :1] - cut) if shape == "margin" else v / v[:, :1]
    if shape.startswith("pow"):
        rel = rel ** float(shape[3:])
    tf = (rel * float(levels)).round().clamp(min=1).numpy()
    rows = np.repeat(np.arange(len(z)), active)
    return sp.csr_matrix((tf.ravel(), (rows, kept.numpy().ravel())), shape=(len(z), atoms.shape[1]))


QUERY_WEIGHTS = {"log": lambda c: 1 + np.log(c), "linear": lambda c: c, "sqrt": np.sqrt, "flat": np.ones_like}


def bm25(db, q, k1=1.2, b=0.75, query_weight: str = "log") -> np.ndarray:
    n = db.shape[0]
    df = np.asarray((db > 0).sum(0)).ravel()
    idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
    dl = np.asarray(db.sum(1)).ravel()
    d = db.tocoo()
    sat = d.data * (k1 + 1) / (d.data + k1 * (1 - b + b * dl[d.row] / dl.mean()))

    dbw = sp.csr_matrix((sat * idf[d.col], (d.row, d.col)), shape=db.shape)
    qw = q.copy()
    qw.data = QUERY_WEIGHTS[query_weight](qw.data)  # "log": 1 + ln count, the searcher's term_weights
    return (qw @ dbw.T).toarray()


def score_map(s: np.ndarray, z) -> float:
    ranked = metrics.rank_by_score(s).astype(np.int32)
    if z["exclude"]:
        keep = ranked != z["self_ids"][:, None]
        ranked = ranked[keep].reshape(len(ranked), -1)
    rel = metrics.relevance_matrix(z["qlab"], ranked, z["dblab"])
    return metrics.mean_average_precision(rel, z["nrel"]).value


def minmax(s):
    lo, hi = s.min(1, keepdims=True), s.max(1, keepdims=True)
    return (s - lo) / np.maximum(hi - lo, 1e-12)


def zscore(s):
    return (s - s.mean(1, keepdims=True)) / np.maximum(s.std(1, keepdims=True), 1e-12)


def score(args) -> None:
    sets = {p.stem: dict(np.load(p)) for p in sorted(args.out.glob("*.npz"))}
    train, inet = sets.pop("train"), sets["imagenette"]
    atoms = gaussian_atoms(1024, 65536, 0).T.contiguous().T  # (dims, atoms)
    w = args.class_weight
    x_fit = descriptor(inet["g"], inet["c"], w)
    # training pairs: each original (a query of the train set) against each of its copies
    tq, tdb = descriptor(train["qg"], train["qc"], w), descriptor(train["g"], train["c"], w)
    row_of = np.full(train["qlab"].max() + 1, -1)
    row_of[train["qlab"]] = np.arange(len(tq))
    diff = tq[row_of[train["dblab"]]] - tdb
    projections = {"pca": pca(x_fit, 1024)} if args.pca else {}
    for variant in args.variant:  # whole:SHRINK:POWER or gem:SHRINK:POWER
        part, shrink, power = variant.split(":")
        if part == "whole":
            projections[variant] = learned_whitening(x_fit, diff, 1024, float(shrink), float(power))
        else:
            projections[variant] = gem_whitening(x_fit, diff, 1024, float(shrink), float(power))
    names = list(sets)
    print("projection | mode | " + " | ".join(names) + " | mean")
    for pname, (mean, proj) in projections.items():
        rows = {"dense": [], "bm25": []}
        for name in names:
            z = sets[name]
            db, q = descriptor(z["g"], z["c"], w), descriptor(z["qg"], z["qc"], w)
            e_db, e_q = db @ proj, q @ proj
            centre = (e_db / np.linalg.norm(e_db, axis=1, keepdims=True)).mean(0)
            f = lambda e: (lambda u: (u - centre) / np.linalg.norm(u - centre, axis=1, keepdims=True))(
                e / np.linalg.norm(e, axis=1, keepdims=True))
            dense = f(e_q) @ f(e_db).T
            rows["dense"].append(score_map(dense, z))
            for d in args.prefix:
                g = lambda e: (lambda u: u / np.linalg.norm(u, axis=1, keepdims=True))(
                    f(e)[:, :d] - f(e_db)[:, :d].mean(0))
                rows.setdefault(f"dense@{d}", []).append(score_map(g(e_q) @ g(e_db).T, z))
            if args.dense_only:
                continue
            for tf_spec in args.tf:
                wd = words((db - mean) @ proj, atoms, args.active, tf_spec)
                wq = words((q - mean) @ proj, atoms, args.query_active or args.active, tf_spec)
                if name == "imagenette" and tf_spec == args.tf[0]:
                    df = np.asarray((wd > 0).sum(0)).ravel() / wd.shape[0]
                    print(f"{pname}: median word DF on imagenette {np.median([np.median(df[r.indices]) for r in wd]):.4f}")
                for qwt in args.query_weight:
                    # the query itself stays in both runs, as in the engines; score_map leaves it out
                    sparse = bm25(wd, wq, query_weight=qwt)
                    tag = ("" if qwt == "log" else f" q={qwt}") + ("" if tf_spec == "ratio:10" else f" tf={tf_spec}")
                    rows.setdefault(f"bm25{tag}", []).append(score_map(sparse, z))
                    for hw in args.hybrid:
                        rows.setdefault(f"hybrid {hw}{tag}", []).append(score_map(hw * minmax(sparse) + minmax(dense), z))
                    for hw in args.zfusion:
                        rows.setdefault(f"z-hybrid {hw}{tag}", []).append(score_map(hw * zscore(sparse) + zscore(dense), z))
        for mode, vals in rows.items():
            if not vals:
                continue
            print(f"{pname} | {mode} | " + " | ".join(f"{v:.4f}" for v in vals) + f" | {np.mean(vals):.4f}", flush=True)
    gem_row = []
    for name in names:
        z = sets[name]
        gem_row.append(score_map(z["qg"] @ z["g"].T, z))
    print("gem | cosine | " + " | ".join(f"{v:.3f}" for v in gem_row) + f" | {np.mean(gem_row):.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("extract")
    e.add_argument("--train", type=Path, required=True)
    e.add_argument("--out", type=Path, required=True)
    s = sub.add_parser("score")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--class-weight", type=float, default=0.6)
    s.add_argument("--variant", nargs="*", default=["whole:0.1:0.5"])
    s.add_argument("--pca", action="store_true")
    s.add_argument("--prefix", type=int, nargs="*", default=[])
    s.add_argument("--dense-only", action="store_true")
    s.add_argument("--active", type=int, default=384, help="words per image")
    s.add_argument("--query-active", type=int, default=None, help="words per query image (default: --active)")
    s.add_argument("--hybrid", type=float, nargs="*", default=[0.5], help="words weights of min-max fusion")
    s.add_argument("--zfusion", type=float, nargs="*", default=[], help="words weights of z-score fusion")
    s.add_argument("--tf", nargs="*", default=["ratio:10"],
                   help="term frequencies SHAPE:LEVELS, SHAPE ratio (the lift head's), margin or powP")
    s.add_argument("--query-weight", nargs="*", choices=sorted(QUERY_WEIGHTS), default=["log"],
                   help="query word weights from counts: log (1 + ln c, the searcher's), linear, sqrt, flat")
    args = ap.parse_args()
    extract(args) if args.cmd == "extract" else score(args)


if __name__ == "__main__":
    main()
