"""Matryoshka head, nested loss and the PCA baseline."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vqgram.tokenizer.matryoshka import (
    MatryoshkaConfig,
    MatryoshkaHead,
    fit_matryoshka,
    nested_loss,
    relational_loss,
    soft_targets,
)
from vqgram.tokenizer.pca import PCAProjection


def test_config_nesting_defaults_and_errors():
    assert MatryoshkaConfig(dim=1024).nesting == (8, 16, 32, 64, 128, 256, 512, 1024)
    assert MatryoshkaConfig(dim=1280).nesting == (8, 16, 32, 64, 128, 256, 512, 1024, 1280)
    assert MatryoshkaConfig(dim=100).nesting == (8, 16, 32, 64, 100)
    assert MatryoshkaConfig(dim=64).weights == (1.0,) * 4
    with pytest.raises(ValueError, match="3 loss weights for 4 nesting sizes"):
        MatryoshkaConfig(dim=64, weights=(1, 1, 1))
    with pytest.raises(ValueError, match="strictly increasing"):
        MatryoshkaConfig(dim=64, nesting=(16, 8))
    with pytest.raises(ValueError, match="within 1..dim=64"):
        MatryoshkaConfig(dim=64, nesting=(8, 128))
    c = MatryoshkaConfig(dim=32, nesting=(4, 32), weights=(2.0, 1.0), hidden=16)
    assert MatryoshkaConfig.from_dict(c.to_dict()) == c


def _head(efficient: bool, hidden: int = 0) -> MatryoshkaHead:
    torch.manual_seed(0)
    return MatryoshkaHead(
        MatryoshkaConfig(in_dim=12, dim=16, nesting=(2, 4, 16), weights=(0.5, 1.0, 2.0),
                         efficient=efficient, num_classes=5, hidden=hidden, temperature=2.0)
    )


@pytest.mark.parametrize("efficient", [False, True])
def test_nested_loss_is_weighted_sum_of_prefix_losses(efficient):
    head = _head(efficient)
    c = head.config
    x = torch.randn(7, 12)
    z = head(x)
    assert z.shape == (7, 16)
    teacher = soft_targets(torch.randn(7, 5), c.temperature)
    labels = torch.tensor([0, 1, 2, 3, 4, 0, 1])
    manual_soft, manual_hard = 0.0, 0.0
    for i, (m, w) in enumerate(zip(c.nesting, c.weights)):
        if efficient:
            W, b = head.classifier.weight[:, :m], head.classifier.bias
        else:
            W, b = head.classifiers[i].weight, head.classifiers[i].bias
        logits = z[:, :m] @ W.T + b
        logp = F.log_softmax(logits / c.temperature, dim=-1)
        kl = (teacher * (teacher.log() - logp)).sum(-1).mean() * c.temperature**2
        manual_soft += w * kl
        manual_hard += w * F.cross_entropy(logits, labels)
    logits = head.prefix_logits(z)
    assert [lg.shape for lg in logits] == [(7, 5)] * 3
    got = nested_loss(logits, teacher, c.weights, c.temperature)
    torch.testing.assert_close(got, manual_soft)
    torch.testing.assert_close(nested_loss(logits, labels, c.weights), manual_hard)


def test_nested_loss_is_zero_when_student_matches_teacher():
    logits = torch.randn(4, 6)
    t = soft_targets(logits, 3.0)
    assert float(nested_loss([logits, logits], t, (1.0, 1.0), 3.0)) == pytest.approx(0.0, abs=1e-6)


def test_efficient_variant_shares_one_weight():
    eff, per = _head(True), _head(False)
    assert not hasattr(eff, "classifiers") and eff.classifier.weight.shape == (5, 16)
    assert [clf.weight.shape for clf in per.classifiers] == [(5, 2), (5, 4), (5, 16)]
    # a gradient through the 2-d prefix only touches the first 2 columns of the shared W
    z = eff(torch.randn(3, 12))
    eff.prefix_logits(z)[0].sum().backward()
    g = eff.classifier.weight.grad
    assert g[:, :2].abs().sum() > 0 and g[:, 2:].abs().sum() == 0
    n_eff = sum(p.numel() for p in eff.parameters())
    n_per = sum(p.numel() for p in per.parameters())
    assert n_per - n_eff == 5 * (2 + 4) + 2 * 5  # two extra weight matrices and biases


def _blobs(n_per=60, classes=4, dim=24, seed=0):
    g = np.random.default_rng(seed)
    centres = g.normal(size=(classes, dim)) * 3
    x = np.concatenate([centres[c] + g.normal(size=(n_per, dim)) for c in range(classes)])
    y = np.repeat(np.arange(classes), n_per)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


@pytest.mark.parametrize("efficient,hidden", [(False, 0), (True, 32)])
def test_fit_beats_chance_at_every_prefix(efficient, hidden):
    x, y = _blobs()
    cfg = MatryoshkaConfig(in_dim=24, dim=16, nesting=(1, 2, 4, 16), num_classes=4,
                           efficient=efficient, hidden=hidden)
    head = fit_matryoshka(x, y, cfg, epochs=40, lr=1e-2, batch_size=64, seed=0)
    with torch.no_grad():
        z = head(x)
        accs = [(lg.argmax(1) == y).float().mean().item() for lg in head.prefix_logits(z)]
    assert all(a > 0.6 for a in accs), accs  # chance is 0.25
    # nearest-neighbour retrieval with the 2-d prefix already separates the classes
    z2 = F.normalize(z[:, :2], dim=1)
    sim = z2 @ z2.T
    sim.fill_diagonal_(-2)
    assert (y[sim.argmax(1)] == y).float().mean() > 0.6


def test_fit_distills_teacher_logits_and_is_deterministic():
    x, y = _blobs(classes=3)
    teacher = F.one_hot(y, 3).float() * 5.0
    cfg = MatryoshkaConfig(in_dim=24, dim=8, nesting=(2, 8), num_classes=3, temperature=2.0)
    a = fit_matryoshka(x, teacher, cfg, epochs=15, lr=1e-2, batch_size=32, seed=3)
    b = fit_matryoshka(x, teacher, cfg, epochs=15, lr=1e-2, batch_size=32, seed=3)
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x))
        assert (a.prefix_logits(a(x))[0].argmax(1) == y).float().mean() > 0.8
    # a rebuilt head from config + state dict gives the same embedding
    c = MatryoshkaHead(MatryoshkaConfig.from_dict(a.config.to_dict()))
    c.load_state_dict(a.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(c(x), a(x))


def test_fit_rejects_bad_targets():
    x, _ = _blobs()
    cfg = MatryoshkaConfig(in_dim=24, dim=8, nesting=(8,), num_classes=4)
    with pytest.raises(ValueError, match=r"expected \(N, 4\)"):
        fit_matryoshka(x, torch.randn(len(x), 7), cfg, epochs=1)
    with pytest.raises(ValueError, match="expected \\(N, 24\\)"):
        fit_matryoshka(x[:, :5], torch.zeros(len(x), dtype=torch.long), cfg, epochs=1)


def test_pca_is_orthonormal_sorted_and_nested():
    g = np.random.default_rng(0)
    x = (g.normal(size=(500, 10)) * np.linspace(5, 0.1, 10)) @ np.linalg.qr(g.normal(size=(10, 10)))[0]
    pca = PCAProjection.fit(x)
    c = pca.components
    np.testing.assert_allclose(c @ c.T, np.eye(10), atol=1e-5)
    assert np.all(np.diff(pca.variances) <= 1e-6)
    # the variance of each coordinate is its eigenvalue
    np.testing.assert_allclose(pca.transform(x).var(axis=0, ddof=1), pca.variances, rtol=1e-3)
    # a prefix is a prefix: transform(d) == transform()[:, :d]
    np.testing.assert_allclose(pca.transform(x, 3), pca.transform(x)[:, :3], atol=1e-5)
    # full width reconstructs exactly; reconstruction error shrinks with d
    np.testing.assert_allclose(pca.inverse_transform(pca.transform(x)), x, atol=1e-4)
    errs = [np.mean((pca.inverse_transform(pca.transform(x, d)) - x) ** 2) for d in range(1, 11)]
    assert all(a >= b - 1e-9 for a, b in zip(errs, errs[1:]))
    # and the error at d is the sum of the dropped variances
    assert errs[2] * 10 == pytest.approx(pca.variances[3:].sum() * 499 / 500, rel=1e-3)


def test_pca_whiten_and_save(tmp_path):
    g = np.random.default_rng(1)
    x = g.normal(size=(300, 6)) * np.arange(1, 7)
    pca = PCAProjection.fit(x, n_components=4, whiten=True)
    np.testing.assert_allclose(pca.transform(x).var(axis=0, ddof=1), 1.0, rtol=1e-3)
    pca.save(tmp_path / "p.npz")
    back = PCAProjection.load(tmp_path / "p.npz")
    np.testing.assert_allclose(back.transform(x), pca.transform(x))
    with pytest.raises(ValueError, match="d=5 must lie in 1..4"):
        pca.transform(x, 5)


def test_relational_loss_is_zero_at_its_target_and_finite():
    z = torch.randn(6, 8, requires_grad=True)
    zn = F.normalize(z.detach(), dim=-1)
    assert relational_loss(z, zn @ zn.T, (8,), 0.1).item() == pytest.approx(0.0, abs=1e-5)
    # a prefix differs from the full cosines: positive loss, finite gradient
    loss = relational_loss(z, zn @ zn.T, (2, 8), 0.1)
    loss.backward()
    assert loss.item() > 0 and torch.isfinite(z.grad).all()
    # the mean over prefixes: (prefix-2 KL + 0) / 2
    z2 = F.normalize(z.detach()[:, :2], dim=-1)
    t = F.softmax((zn @ zn.T).masked_fill(torch.eye(6, dtype=torch.bool), -1e4) / 0.1, dim=-1)
    p = F.log_softmax((z2 @ z2.T).masked_fill(torch.eye(6, dtype=torch.bool), -1e4) / 0.1, dim=-1)
    kl = (t * (t.clamp_min(1e-30).log() - p)).masked_fill(torch.eye(6, dtype=torch.bool), 0).sum(-1).mean()
    assert loss.item() == pytest.approx(kl.item() / 2, rel=1e-4)


def test_fit_with_relational_term_runs():
    x, y = _blobs(classes=3)
    teacher = F.one_hot(y, 3).float() * 5.0
    for target in ("self", "teacher"):
        cfg = MatryoshkaConfig(in_dim=24, dim=8, nesting=(2, 8), num_classes=3,
                               relational_weight=1.0, relational_target=target)
        head = fit_matryoshka(x, teacher, cfg, epochs=5, lr=1e-2, batch_size=64)
        assert torch.isfinite(head(x)).all()
    with pytest.raises(ValueError, match="needs teacher logits"):
        fit_matryoshka(x, y, cfg, epochs=1)
