"""Model weights stored once: each tensor a safetensors file named by its checksum, each model a JSON naming them.

A model folder holds `model.json`: its ModelConfig, a card (what the heads were
trained on and how), "tensors" (state-dict name -> address, the sha256 of that
tensor's safetensors file) and "sha256", the model's checksum: the sha256 of
the name -> address map as canonical JSON. Index manifests record it, so an
index knows exactly which model made its words. Tensor files live in a
`tensors/` folder beside the model folders when there is one (the packaged
models share vqgram/models/tensors, so a tensor several models hold is stored
once; a new head is just more entries), else inside the model folder.

Before tensors were stored once a model was one `heads.pt`, and indexes
recorded that file's sha256: a packaged model keeps it as "legacy_sha256", so
those indexes still find their model, and a model folder still in that form
loads (its checksum stays its heads.pt's). Models no longer packaged are
listed in `retired.json` with the seeded command that rebuilds them.

Only reading and writing tensors imports torch, so index-only commands can
name and find models without it.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

MODELS = Path(__file__).resolve().parent.parent / "models"
DEFAULT_MODEL = MODELS / "default"
CARD_NAME = "model.json"
TENSORS = "tensors"
LEGACY_WEIGHTS = "heads.pt"
RETIRED = MODELS / "retired.json"
_KEY = "tensor"  # the one entry of a tensor file


def read_card(folder: Path) -> dict:
    path = Path(folder) / CARD_NAME
    if not path.is_file():
        raise FileNotFoundError(f"not a vqgram model folder (no {CARD_NAME}): {folder}")
    return json.loads(path.read_text())


def checksum(tensors: dict[str, str]) -> str:
    """A model's checksum: the sha256 of its state-dict name -> tensor address map as canonical JSON."""
    return hashlib.sha256(json.dumps(tensors, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def tensor_file(tensor) -> bytes:
    """The bytes of one tensor's safetensors file (its sha256 is the tensor's address)."""
    from safetensors.torch import save

    return save({_KEY: tensor.detach().cpu().contiguous()})


def addresses(state: dict) -> dict[str, str]:
    """State-dict name -> address of each tensor as it would be stored."""
    return {name: hashlib.sha256(tensor_file(t)).hexdigest() for name, t in state.items()}


def weights_sha256(folder: Path) -> str:
    """The checksum of the model in `folder` (a heads.pt folder's: that file's sha256)."""
    meta = read_card(folder)
    if "tensors" in meta:
        return meta["sha256"]
    return hashlib.sha256((Path(folder) / LEGACY_WEIGHTS).read_bytes()).hexdigest()


def write_weights(folder: Path, state: dict, meta: dict) -> str:
    """Store `state`'s tensors (those already in the store are kept) and write model.json: `meta` plus the
    tensor map and the checksum, which it returns."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    store = folder.parent / TENSORS if (folder.parent / TENSORS).is_dir() else folder / TENSORS
    store.mkdir(exist_ok=True)
    tensors = {}
    for name, tensor in state.items():
        data = tensor_file(tensor)
        tensors[name] = address = hashlib.sha256(data).hexdigest()
        path = store / f"{address}.safetensors"
        if not (path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == address):
            path.write_bytes(data)
    meta = {**meta, "tensors": tensors, "sha256": checksum(tensors)}
    (folder / CARD_NAME).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    (folder / LEGACY_WEIGHTS).unlink(missing_ok=True)  # a model trained again into a heads.pt folder
    if store == folder / TENSORS:  # this model's own store: drop the tensors of what was saved here before
        for path in store.glob("*.safetensors"):
            if path.stem not in tensors.values():
                path.unlink()
    return meta["sha256"]


def read_weights(folder: Path) -> dict:
    """The stored state dict of the model in `folder`, each tensor checked against its address."""
    from safetensors.torch import load

    folder = Path(folder)
    meta = read_card(folder)
    if "tensors" not in meta:
        import torch

        return torch.load(folder / LEGACY_WEIGHTS, map_location="cpu", weights_only=True)
    if checksum(meta["tensors"]) != meta["sha256"]:
        raise ValueError(f"model {folder}: its {CARD_NAME} lists tensors whose checksum is not its sha256 "
                         f"(edited by hand?); restore the folder or train the model again")
    return {name: load(_read_tensor(folder, address))[_KEY] for name, address in meta["tensors"].items()}


def _read_tensor(folder: Path, address: str) -> bytes:
    for store in (folder / TENSORS, folder.parent / TENSORS):
        path = store / f"{address}.safetensors"
        if path.is_file():
            data = path.read_bytes()
            if hashlib.sha256(data).hexdigest() != address:
                raise ValueError(f"tensor file {path} is damaged (its sha256 is not its name); restore it or "
                                 "train the model again")
            return data
    raise FileNotFoundError(f"model {folder} needs tensor {address}.safetensors, found neither in "
                            f"{folder / TENSORS} nor in {folder.parent / TENSORS}")


def packaged_models() -> list[Path]:
    return sorted(p for p in MODELS.iterdir() if (p / CARD_NAME).is_file())


def packaged_model(sha256: str) -> Path | None:
    """The packaged model folder whose checksum, or heads.pt checksum before tensors were stored once, is
    `sha256`, if any: an index made while another packaged model was the default names "default" and that
    model's checksum."""
    for folder in packaged_models():
        meta = read_card(folder)
        if sha256 in (meta["sha256"], meta.get("legacy_sha256")):
            return folder
    return None


def retired_model(sha256: str) -> dict | None:
    """The entry of retired.json (name, checksums, rebuild command) of a model no longer packaged."""
    for name, entry in json.loads(RETIRED.read_text()).items():
        if sha256 in (entry["sha256"], entry["legacy_sha256"]):
            return {"name": name, **entry}
    return None


def current_sha256(sha256: str) -> str:
    """The checksum a packaged or retired model recorded as `sha256` (maybe its heads.pt's) goes by today: two
    checksums name the same model when these agree."""
    if folder := packaged_model(sha256):
        return weights_sha256(folder)
    retired = retired_model(sha256)
    return retired["sha256"] if retired else sha256
