"""--device: auto resolves to what the machine has, an absent accelerator is a clear error, CPU encodes as before."""
import pytest
import torch

from vqgram.tokenizer.device import resolve_device


def test_auto_picks_an_available_device_and_absent_ones_are_refused():
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="unknown device 'tpu'; choose one of: auto, cpu, cuda, mps"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device cuda is not available"):
            resolve_device("cuda")


def test_auto_device_tokenizer_encodes_like_the_cpu_one(tokenizer, queries):
    from vqgram import Tokenizer

    auto = Tokenizer.from_model(device="auto")
    a, b = auto.encode_image(queries / "tench.jpg"), tokenizer.encode_image(queries / "tench.jpg")
    assert a.counts.device.type == a.embedding.device.type == "cpu"  # results come back to the CPU
    if auto.device.type == "cpu":
        assert torch.equal(a.counts, b.counts) and torch.allclose(a.embedding, b.embedding)
    else:  # bf16 autocast may flip a few codes; the embedding stays close
        assert torch.nn.functional.cosine_similarity(a.embedding, b.embedding).item() > 0.99
