"""Where the network runs: `auto` picks CUDA, then Apple's MPS, then the CPU.

On CUDA the backbone runs under bf16 autocast in channels_last layout (tensor
cores); the heads then see float32 feature maps, so codes and embeddings stay
float32 decisions on every device.

On the CPU, glibc's allocator hands every freed block over 32 MB back to the
kernel, so each batch's activations are faulted in afresh: on this project's
2-core machine page faults took half the CPU time of a forward pass
(`reuse_freed_memory`).
"""
from __future__ import annotations

import ctypes
import os

import torch

from ..cores import usable_cores

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


_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)
_reusing = False
# The same policy as glibc tunables, read when a process starts, plus one arena for all threads.
_TUNABLES = "glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483647"


def reuse_freed_memory() -> bool:
    """Keep freed memory in this process's heap for the next batch instead of returning it to the kernel.

    glibc serves blocks over its mmap threshold (at most 32 MB; a batch of 32
    at 224 px has 51 MB activations) with fresh mappings and unmaps them on
    free; the next batch then pays a page fault per 4 kB. With mmap off and
    trimming above 2 GB, the backbone ran at 75 instead of 38 images/s on
    this machine (`docs/RESULTS.md`). The cost: the process keeps its peak
    heap until it ends, and the heap settles only after about ten batches
    (torch asks for 64-byte aligned blocks; the few bytes glibc splits off to
    align one wait in its per-thread cache, seven a size, and keep the freed
    block from merging into one big enough for the next, so the first ones
    come from fresh memory). Once per process; off with VQGRAM_MALLOC=system, and a
    no-op where the C library is not glibc. True when the setting is in force.
    """
    global _reusing
    if not _reusing and os.environ.get("VQGRAM_MALLOC", "") != "system":
        try:
            libc = ctypes.CDLL(None)
            _reusing = bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
        except (OSError, AttributeError):  # no mallopt: not glibc
            pass
    return _reusing


def reuse_freed_memory_env() -> dict[str, str]:
    """Environment variables that give a process `reuse_freed_memory`'s policy from its start, in every thread.

    mallopt reaches the main arena only. A thread that allocates in an arena
    of its own gets heaps of at most 64 MB that are unmapped when emptied, and
    larger blocks mapped afresh, whatever mallopt says; Ray runs an actor's
    tasks in such a thread, where encoding 1,000 images faulted 2.2 M pages
    (a quarter of the worker's CPU). glibc reads GLIBC_TUNABLES when a process
    starts, so engines hand this to the workers they launch; the user's own
    tunables come last and win. {} with VQGRAM_MALLOC=system.
    """
    if os.environ.get("VQGRAM_MALLOC", "") == "system":
        return {}
    own = os.environ.get("GLIBC_TUNABLES")
    return {"GLIBC_TUNABLES": f"{_TUNABLES}:{own}" if own else _TUNABLES}


def autocast(device: torch.device):
    """bf16 autocast on CUDA, nothing elsewhere (CPU bf16 is slower than float32 on most CPUs)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def decode_workers(device: torch.device) -> int:
    """Decoding processes for a model on `device` when the caller names none: 2, but none for a CPU model
    on a machine of at most 2 cores. There torch's threads already take every core and a decoding worker
    preempts them mid-product; decoding between batches in-process indexed 2,000 imagenette photos at
    80.7 / 82.8 / 84.3 images/s against 78.7 / 75.1 / 75.2 with 2 workers (runs interleaved)."""
    return 0 if device.type == "cpu" and usable_cores() <= 2 else 2


def native_bfloat16_cpu() -> bool:
    """Whether this CPU multiplies bfloat16 matrices natively (AVX-512 BF16 or AMX, through oneDNN).

    There a bf16 product is ~4x faster than float32 (the lift head's candidate
    atoms: 2.4 -> 0.6 ms an image on this project's Zen 4 machine); elsewhere
    torch emulates bf16 and it can be slower than float32.
    """
    try:
        return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch without the check
        return False
