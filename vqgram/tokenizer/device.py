"""Where the network runs: `auto` picks CUDA, then Apple's MPS, then the CPU.

On CUDA the backbone runs under bf16 autocast in channels_last layout (tensor
cores); the heads then see float32 feature maps, so codes and embeddings stay
float32 decisions on every device.
"""
from __future__ import annotations

import torch

DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str = "auto") -> torch.device:
    """A torch device for `name`; ValueError when the asked accelerator is not there."""
    if name not in DEVICES:
        raise ValueError(f"unknown device {name!r}; choose one of: {', '.join(DEVICES)}")
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        name = "cuda" if cuda else "mps" if mps else "cpu"
    if (name == "cuda" and not cuda) or (name == "mps" and not mps):
        raise ValueError(f"device {name} is not available on this machine; use --device cpu or auto")
    return torch.device(name)


def autocast(device: torch.device):
    """bf16 autocast on CUDA, nothing elsewhere (CPU bf16 is slower than float32 on most CPUs)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
