"""Training a VQ head writes a model folder that loads back and tokenizes (resnet50 path with random weights)."""
import json

import torch

from vqgram import KGramConfig, Tokenizer, VQConfig
from vqgram.tokenizer.model import load_model, weights_sha256
from vqgram.tokenizer.train import distill_loss, train_vq_model


def test_train_save_load_roundtrip(tmp_path, photos, queries):
    vq = VQConfig(heads=2, codebook_dim=8, codebook_size=16, threshold_ema_dead_code=0)
    card = train_vq_model(photos, tmp_path / "model", backbone="resnet50", weights="random", vq=vq,
                          kmeans_passes=1, epochs=1, max_size=64, workers=0)
    assert card["images"] == 36 and "distillation" in card["recipe"]
    meta = json.loads((tmp_path / "model" / "model.json").read_text())
    assert meta["config"]["backbone"] == "resnet50" and meta["config"]["vq"]["heads"] == 2
    assert meta["sha256"] == weights_sha256(tmp_path / "model")

    model = load_model(tmp_path / "model")
    assert sum(p.numel() for p in model.vq.parameters()) > 0
    tok = Tokenizer.from_model(tmp_path / "model", KGramConfig(kernel=2), max_size=64)
    words = tok.words(queries / "tench.jpg")
    assert words and all(w.startswith(("h0", "h1")) for w in words)
    assert sum(words.values()) == 2 * 4  # 2 heads x 2x2 grid at 64 px with a 2x2 window: 1 position x 4 offsets


def test_distillation_loss_is_zero_for_the_teacher_and_positive_otherwise():
    teacher = torch.randn(4, 10)
    assert distill_loss(teacher, teacher, 2.0).item() < 1e-6
    assert distill_loss(torch.randn(4, 10), teacher, 2.0).item() > 0
