"""Models stored once: content-addressed tensors, each model's JSON naming them and its checksum; the packaged
models load bit for bit as they were stored, indexes that recorded a heads.pt checksum still find their model,
and an index whose model left the package says how to rebuild it."""
import hashlib
import json
import shutil

import pytest
import torch

from vqgram.tokenizer.model import load_model, save_model, stored_state
from vqgram.tokenizer.weights import (MODELS, TENSORS, addresses, checksum, packaged_model, packaged_models,
                                      read_card, retired_model, weights_sha256)


def test_every_packaged_model_loads_bit_for_bit_as_stored():
    """The tensors a loaded model would store again hash to the checksum its JSON records (which was checked
    once against the heads.pt files it replaced: each legacy_sha256 is that file's sha256)."""
    names = [folder.name for folder in packaged_models()]
    assert names == ["default", "imagenette-v1", "lift-v2", "lift-v3"]
    for folder in packaged_models():
        model = load_model(folder)
        stored = addresses(stored_state(model))
        assert stored == read_card(folder)["tensors"], folder.name
        assert checksum(stored) == weights_sha256(folder), folder.name


def test_the_store_holds_each_tensor_once_and_nothing_else():
    files = {path.stem: path for path in (MODELS / TENSORS).iterdir()}
    listed = {address for folder in packaged_models() for address in read_card(folder)["tensors"].values()}
    assert set(files) == listed  # no orphan from a model trained again, nothing missing
    for address, path in files.items():
        assert path.suffix == ".safetensors" and hashlib.sha256(path.read_bytes()).hexdigest() == address
        assert path.stat().st_size < 5e6
    assert sum(path.stat().st_size for path in files.values()) < 15e6
    shared = read_card(MODELS / "default")["tensors"]["mrl.proj.weight"]
    assert all(read_card(folder)["tensors"]["mrl.proj.weight"] == shared for folder in packaged_models())


def test_legacy_checksums_find_their_packaged_model():
    for folder in packaged_models():
        meta = read_card(folder)
        assert packaged_model(meta["sha256"]) == folder
        if folder.name != "default":  # the models made before tensors were stored once (not the grid head's)
            assert packaged_model(meta["legacy_sha256"]) == folder
    assert packaged_model("0" * 64) is None
    retired = retired_model("cb0e7542ca82153275e60c33153fc89ea2a4ddc0efac375f1966a6e6092423e0")
    assert retired["name"] == "lift-v1" and retired["command"].startswith("vqgram train lift ")


@pytest.fixture(scope="module")
def lift_v2():
    return load_model(MODELS / "lift-v2")


def test_saved_models_share_a_store_beside_them_else_keep_their_own(tmp_path, lift_v2):
    card = {"note": "test"}
    save_model(lift_v2, tmp_path / "own", card)
    own = read_card(tmp_path / "own")
    assert {p.stem for p in (tmp_path / "own" / TENSORS).iterdir()} == set(own["tensors"].values())
    assert own["sha256"] == read_card(MODELS / "lift-v2")["sha256"]  # the same tensors, the same checksum

    (tmp_path / "shared" / TENSORS).mkdir(parents=True)
    for name in ("a", "b"):
        save_model(lift_v2, tmp_path / "shared" / name, card)
        assert not (tmp_path / "shared" / name / TENSORS).exists()
    assert len(list((tmp_path / "shared" / TENSORS).iterdir())) == len(own["tensors"])
    loaded = load_model(tmp_path / "shared" / "b").heads_state()
    assert all(torch.equal(v, lift_v2.heads_state()[k]) for k, v in loaded.items())


def test_saving_again_drops_the_tensors_it_replaced(tmp_path, lift_v2):
    save_model(lift_v2, tmp_path / "m", {})
    with torch.no_grad():
        lift_v2_changed = load_model(MODELS / "lift-v2")
        lift_v2_changed.lift.mean.add_(1)
    save_model(lift_v2_changed, tmp_path / "m", {})
    assert {p.stem for p in (tmp_path / "m" / TENSORS).iterdir()} == set(read_card(tmp_path / "m")["tensors"].values())
    assert torch.equal(load_model(tmp_path / "m").lift.mean, lift_v2_changed.lift.mean)


def test_a_damaged_or_missing_tensor_file_is_named(tmp_path, lift_v2):
    save_model(lift_v2, tmp_path / "m", {})
    address = read_card(tmp_path / "m")["tensors"]["lift.mean"]
    path = tmp_path / "m" / TENSORS / f"{address}.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f"tensor file {path} is damaged"):
        load_model(tmp_path / "m")
    path.unlink()
    with pytest.raises(FileNotFoundError, match=f"needs tensor {address}.safetensors"):
        load_model(tmp_path / "m")


def test_a_heads_pt_model_folder_still_loads_with_its_checksum(tmp_path, lift_v2):
    """A model folder saved before tensors were stored once: heads.pt beside a model.json without "tensors";
    its checksum stays the sha256 of heads.pt, which indexes made with it recorded."""
    folder = tmp_path / "old"
    folder.mkdir()
    torch.save(stored_state(lift_v2), folder / "heads.pt")
    legacy = hashlib.sha256((folder / "heads.pt").read_bytes()).hexdigest()
    meta = read_card(MODELS / "lift-v2")
    (folder / "model.json").write_text(json.dumps({"config": meta["config"], "card": {}, "sha256": legacy}))
    assert weights_sha256(folder) == legacy
    loaded = load_model(folder).heads_state()
    assert all(torch.equal(v, lift_v2.heads_state()[k]) for k, v in loaded.items())


def test_an_index_of_a_retired_model_says_how_to_rebuild_it(tmp_path, photo_index, queries):
    """An index made while lift-v1 was the packaged default (its manifest names "default" and lift-v1's heads.pt
    checksum) fails in one line naming that checksum and the seeded command that rebuilds the model."""
    from click.testing import CliRunner

    from vqgram.cli import main
    from vqgram.config import MANIFEST_NAME
    from vqgram.searcher.searcher import Searcher

    index = tmp_path / "index"
    shutil.copytree(photo_index("tantivy"), index)
    manifest = json.loads((index / MANIFEST_NAME).read_text())
    legacy = "cb0e7542ca82153275e60c33153fc89ea2a4ddc0efac375f1966a6e6092423e0"
    (index / MANIFEST_NAME).write_text(json.dumps({**manifest, "model_path": "default", "model_sha256": legacy}))
    with pytest.raises(ValueError, match="made by the model lift-v1 \\(checksum cb0e7542ca82\\).*'vqgram train lift"):
        Searcher(index).tokenizer
    result = CliRunner().invoke(main, ["search", str(index), "--image", str(queries / "cat.jpg")])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
    assert "cb0e7542ca82" in result.output and "vqgram train lift ../shared/data/imagenette/train" in result.output


def test_a_retired_models_exact_heads_pt_reopens_its_index(tmp_path, photos, lift_v2, monkeypatch):
    """The exact weights of a retired model, restored from git history as a heads.pt folder, have the checksum
    its indexes recorded: an index naming that folder opens with it (lift-v2 with another mean plays it)."""
    from vqgram import Tokenizer, index_folder
    from vqgram.config import MANIFEST_NAME
    from vqgram.searcher.searcher import Searcher
    from vqgram.tokenizer import weights

    folder = tmp_path / "restored"
    folder.mkdir()
    state = stored_state(lift_v2)
    torch.save({**state, "lift.mean": state["lift.mean"] + 1}, folder / "heads.pt")
    meta = read_card(MODELS / "lift-v2")
    (folder / "model.json").write_text(json.dumps({"config": meta["config"], "card": {}}))
    legacy = weights_sha256(folder)
    assert packaged_model(legacy) is None
    retired = tmp_path / "retired.json"
    retired.write_text(json.dumps({"old": {"legacy_sha256": legacy, "sha256": "1" * 64, "command": "vqgram train"}}))
    monkeypatch.setattr(weights, "RETIRED", retired)
    index = tmp_path / "index"
    index_folder(photos / "cat", index, Tokenizer.from_model(folder), workers=0, progress=False)
    manifest = json.loads((index / MANIFEST_NAME).read_text())
    (index / MANIFEST_NAME).write_text(json.dumps({**manifest, "model_path": "default"}))
    with pytest.raises(ValueError, match=f"made by the model old \\(checksum {legacy[:12]}\\)"):
        Searcher(index).tokenizer
    (index / MANIFEST_NAME).write_text(json.dumps({**manifest, "model_path": str(folder)}))
    with Searcher(index) as s:
        assert s.tokenizer.model_sha256 == legacy and s.search_image(photos / "cat" / next(
            p.name for p in (photos / "cat").iterdir()), k=1)
