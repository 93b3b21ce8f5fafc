"""Training a VQ head writes a model folder that loads back and tokenizes (resnet50 path with random weights)."""
import json

import pytest
import torch

from vqgram import KGramConfig, Tokenizer, VQConfig
from vqgram.tokenizer.model import load_model
from vqgram.tokenizer.train import CachedFeatures, distill_loss, init_from_pca, train_vq_model
from vqgram.tokenizer.vq import VQHead
from vqgram.tokenizer.weights import weights_sha256


def test_train_save_load_roundtrip(tmp_path, photos, queries):
    vq = VQConfig(heads=2, codebook_dim=8, codebook_size=16, threshold_ema_dead_code=0)
    card = train_vq_model(photos, tmp_path / "model", backbone="resnet50", weights="random", vq=vq,
                          kmeans_passes=1, epochs=1, max_size=64, workers=0)
    assert card["images"] == 33 and "distillation" in card["recipe"]
    meta = json.loads((tmp_path / "model" / "model.json").read_text())
    assert meta["config"]["backbone"] == "resnet50" and meta["config"]["vq"]["heads"] == 2
    assert meta["sha256"] == weights_sha256(tmp_path / "model")

    model = load_model(tmp_path / "model")
    assert sum(p.numel() for p in model.vq.parameters()) > 0
    tok = Tokenizer.from_model(tmp_path / "model", KGramConfig(kernel=2), max_size=64)
    words = tok.words(queries / "astronaut.jpg")  # square: a 2x2 grid at 64 px
    assert words and all(w.startswith(("h0", "h1")) for w in words)
    assert sum(words.values()) == 2 * 4  # 2 heads x 2x2 grid at 64 px with a 2x2 window: 1 position x 4 offsets


def test_distillation_loss_is_zero_for_the_teacher_and_positive_otherwise():
    teacher = torch.randn(4, 10)
    assert distill_loss(teacher, teacher, 2.0).item() < 1e-6
    assert distill_loss(torch.randn(4, 10), teacher, 2.0).item() > 0


def test_train_mrl_adds_a_nested_embedding(tmp_path, photos, queries):
    from vqgram.tokenizer.train import train_mrl_model

    vq = VQConfig(heads=2, codebook_dim=8, codebook_size=16, threshold_ema_dead_code=0)
    train_vq_model(photos, tmp_path / "base", backbone="resnet50", weights="random", vq=vq, kmeans_passes=1,
                   max_size=64, workers=0)
    from vqgram import MatryoshkaConfig

    card = train_mrl_model(photos, tmp_path / "mrl", base=tmp_path / "base", config=MatryoshkaConfig(dim=32),
                           epochs=2, max_size=64, workers=0)
    assert card["images"] == 33 and list(card["config"]["nesting"]) == [8, 16, 32] and card["config"]["in_dim"] == 2048
    tok = Tokenizer.from_model(tmp_path / "mrl", KGramConfig(kernel=2), max_size=64)
    enc = tok.encode_image(queries / "cat.jpg")
    assert enc.embedding.shape == (1, 32)
    assert torch.allclose(enc.embedding.norm(dim=-1), torch.ones(1))
    base_vq, new_vq = load_model(tmp_path / "base").vq.state_dict(), load_model(tmp_path / "mrl").vq.state_dict()
    assert all(torch.equal(base_vq[k], new_vq[k]) for k in base_vq)  # the VQ head is kept


def _random_cache(channels: int = 32) -> CachedFeatures:
    fmaps = [torch.randn(8, channels, 4, 4, generator=torch.Generator().manual_seed(0)).half()]
    return CachedFeatures(fmaps, [], [], [], [])


def test_rotations_give_every_head_the_same_top_subspace() -> None:
    head = VQHead(32, VQConfig(heads=4, codebook_dim=6, codebook_size=8))
    init_from_pca(head, _random_cache(), "rotations")
    w = head.vq.project_in.weight.double().view(4, 6, 32)
    eye = torch.eye(6, dtype=torch.float64)
    for h in range(4):
        assert torch.allclose(w[h] @ w[h].T, eye, atol=1e-5)  # an orthonormal basis ...
        cross = w[0] @ w[h].T
        assert torch.allclose(cross @ cross.T, eye, atol=1e-5)  # ... of head 0's subspace
    assert not torch.allclose(w[0], w[1], atol=1e-3)
    # project_out inverts project_in on that subspace (the heads' reconstructions averaged)
    x = head.vq.project_out.bias + w[0].float().T @ torch.randn(6)
    back = head.vq.project_out(head.vq.project_in(x))
    assert torch.allclose(back, x, atol=1e-4)


def test_slices_read_consecutive_components_and_bad_names_fail() -> None:
    head = VQHead(32, VQConfig(heads=4, codebook_dim=6, codebook_size=8))
    init_from_pca(head, _random_cache(), "slices")
    w = head.vq.project_in.weight.double()
    assert torch.allclose(w @ w.T, torch.eye(24, dtype=torch.float64), atol=1e-5)  # 24 distinct components
    with pytest.raises(ValueError, match="unknown projection 'pca'"):
        init_from_pca(head, _random_cache(), "pca")
