"""--device: auto resolves to what the machine has, an absent accelerator is a clear error, CPU encodes as before;
on the CPU, freed batches stay in the heap and decoding workers only run where they have cores."""
import os
from pathlib import Path

import pytest
import torch

from vqgram.tokenizer.device import decode_workers, resolve_device


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
    a, b = auto.encode_image(queries / "cat.jpg"), tokenizer.encode_image(queries / "cat.jpg")
    assert a.embedding.device.type == "cpu"  # results come back to the CPU
    if auto.device.type == "cpu":
        assert a.words == b.words and torch.allclose(a.embedding, b.embedding)
    else:  # bf16 autocast may flip a few codes; the embedding stays close
        assert torch.nn.functional.cosine_similarity(a.embedding, b.embedding).item() > 0.99


_FAULTS = """
import resource, torch
from vqgram.tokenizer.device import reuse_freed_memory
on = reuse_freed_memory()
for _ in range(16):  # a batch's worth, freed each time; the heap settles within about ten (see device.py)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(16 << 20)  # 64 MB
print(on, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _last_allocation_faults(env: dict[str, str]) -> tuple[str, int]:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _FAULTS], env={**os.environ, **env}, capture_output=True,
                         text=True, check=True).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(__import__("platform").libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_freed_batches_stay_in_the_heap_so_the_next_one_is_not_faulted_in_again(tokenizer):
    from vqgram.tokenizer.device import reuse_freed_memory

    assert reuse_freed_memory()  # a CPU tokenizer (the fixture) has turned it on in this process
    on, faults = _last_allocation_faults({})
    assert on == "True" and faults < 1_000  # 64 MB is 16,384 pages of 4 kB: reused, not faulted in
    off, faults = _last_allocation_faults({"VQGRAM_MALLOC": "system"})
    assert off == "False"
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if not thp.exists() or "[always]" not in thp.read_text():  # 2 MB pages would fault 32 times, not 16,384
        assert faults > 8_000  # glibc's own policy: a fresh mapping, every page faulted again


_THREAD_BATCH = """
import threading, torch
from vqgram.tokenizer.device import reuse_freed_memory
reuse_freed_memory()
where = []
def batch():  # as a Ray actor's task: in a thread of its own
    x = torch.ones(16 << 20)  # 64 MB
    heap = next(line.split()[0] for line in open("/proc/self/maps") if "[heap]" in line)
    lo, hi = (int(a, 16) for a in heap.split("-"))
    where.append(lo <= x.data_ptr() < hi)
thread = threading.Thread(target=batch)
thread.start()
thread.join()
print(where[0])
"""


@pytest.mark.skipif(__import__("platform").libc_ver()[0] != "glibc", reason="GLIBC_TUNABLES is glibc's")
def test_engine_workers_threads_allocate_from_the_main_heap():
    """mallopt alone leaves a thread's 64 MB batch in a mapping of its own (faulted in afresh each time);
    with the environment the engines give their workers, it comes from the main heap, which is kept."""
    import subprocess
    import sys

    from vqgram.tokenizer.device import reuse_freed_memory_env

    def in_main_heap(env: dict[str, str]) -> bool:
        base = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "VQGRAM_MALLOC")}
        out = subprocess.run([sys.executable, "-c", _THREAD_BATCH], env={**base, **env}, capture_output=True,
                             text=True, check=True)
        return out.stdout.split()[-1] == "True"

    env = reuse_freed_memory_env()
    assert "glibc.malloc.arena_max=1" in env["GLIBC_TUNABLES"]
    assert in_main_heap(env)
    assert not in_main_heap({})


def test_decode_workers_follow_the_device_and_the_cores(monkeypatch):
    """Workers decode beside an accelerator or a many-core CPU; on a CPU of 2 cores the batches are decoded
    in-process (a worker would take a core from the network's threads)."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert decode_workers(torch.device("cpu")) == 0
    assert decode_workers(torch.device("cuda")) == 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    assert decode_workers(torch.device("cpu")) == 2
