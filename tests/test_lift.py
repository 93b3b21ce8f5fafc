"""Lifted words: a real lift head fitted on the sample photos (lite0, ImageNet weights), its words on real
images and their edited copies, a save/load round trip, and an index made of them."""
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from vqgram import SearchOptions, Searcher, Tokenizer, index_folder
from vqgram.config import LiftConfig, ModelConfig
from vqgram.copies import EDITS_BY_NAME, make_copy
from vqgram.tokenizer.lift import LiftedWords, gaussian_atoms, lift_atoms
from vqgram.tokenizer.train_lift import pair_whitener, train_lift_model

SMALL = LiftConfig(dims=64, atoms=4096, active=64)
WHITENED = replace(SMALL, whiten_pairs=6)
INVARIANT = replace(WHITENED, invariance_hidden=32)


@pytest.fixture(scope="module", params=[SMALL, WHITENED, INVARIANT], ids=["pca", "whitened", "invariant"])
def lift_model(tmp_path_factory, photos, request):
    out = tmp_path_factory.mktemp("lift") / "model"
    card = train_lift_model(photos, out, config=request.param, workers=0)
    return out, card


@pytest.mark.parametrize("shrink", [0.0, 0.3])
def test_pair_whitener_whitens_the_shrunk_second_moment(shrink):
    diff = torch.randn(500, 8, dtype=torch.float64) * torch.arange(1, 9, dtype=torch.float64)
    c = diff.T @ diff / len(diff)
    c = (1 - shrink) * c + shrink * c.trace() / 8 * torch.eye(8, dtype=torch.float64)
    w = pair_whitener(diff, shrink)
    assert torch.allclose(w, w.T) and torch.allclose(w @ c @ w, torch.eye(8, dtype=torch.float64), atol=1e-10)


def test_atoms_are_seeded_standard_normal():
    a, b = gaussian_atoms(64, 1000, 0), gaussian_atoms(64, 1000, 0)
    assert torch.equal(a, b) and not torch.equal(a, gaussian_atoms(64, 1000, 1))
    assert abs(a.mean().item()) < 0.02 and abs(a.std().item() - 1) < 0.02


def test_atoms_are_built_once_then_read_from_the_cache(tmp_path):
    built = lift_atoms(64, 1000, 3, tmp_path)
    assert torch.equal(built, gaussian_atoms(64, 1000, 3).T) and built.is_contiguous()
    (file,) = tmp_path.iterdir()
    np.save(file, np.zeros((1000, 64), np.float32))  # a file whose values are not the seed's is read as it is:
    assert not lift_atoms(64, 1000, 3, tmp_path).any()  # proof that the second call reads, not builds
    np.save(file, np.zeros((10, 64), np.float32))  # another shape: built again and written back
    assert torch.equal(lift_atoms(64, 1000, 3, tmp_path), built)
    assert torch.equal(torch.from_numpy(np.load(file)), built)
    file.write_bytes(b"not a numpy file")
    assert torch.equal(lift_atoms(64, 1000, 3, tmp_path), built)
    assert sorted(p.name for p in tmp_path.iterdir()) == [file.name]  # no temp file left behind
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    assert torch.equal(lift_atoms(64, 1000, 3, blocked), built)  # an unwritable cache: in memory only


def test_bfloat16_atoms_are_the_float32_atoms_rounded_and_cached_beside_them(tmp_path):
    built = lift_atoms(64, 1000, 3, tmp_path, dtype=torch.bfloat16)
    assert built.dtype == torch.bfloat16 and torch.equal(built, gaussian_atoms(64, 1000, 3).T.bfloat16())
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["gaussian-1000x64-seed3-bf16.npy", "gaussian-1000x64-seed3.npy"]
    np.save(tmp_path / names[0], np.zeros((1000, 64), np.uint16))  # read back, not built: bits 0 are 0.0
    assert not lift_atoms(64, 1000, 3, tmp_path, dtype=torch.bfloat16).any()
    with pytest.raises(ValueError, match="float32 or bfloat16, not torch.float16"):
        lift_atoms(64, 1000, 3, tmp_path, dtype=torch.float16)


def test_word_strings_round_trip_and_foreign_words_fail():
    words = LiftedWords(SMALL)
    assert words.word(7) == "l00007" and words.word_id("l04095") == 4095
    for bad in ("l4095", "l04096", "h0i0j0c0"):
        with pytest.raises(ValueError):
            words.word_id(bad)


def test_bad_settings_are_sentences():
    with pytest.raises(ValueError, match="active"):
        LiftConfig(active=4096, atoms=4096)
    with pytest.raises(ValueError, match="Matryoshka"):
        ModelConfig(vq=None, lift=LiftConfig())
    with pytest.raises(ValueError, match="word head"):
        ModelConfig(vq=None)


def test_card_reports_sparsity(lift_model):
    _, card = lift_model
    assert card["images"] == 33 and card["words_per_image"] == SMALL.active
    assert 0 < card["median_word_df"] < 1 and 0 < card["variance_kept"] <= 1
    assert ("whitened" in card["recipe"]) == (card["config"]["whiten_pairs"] > 0)
    assert ("residual MLP" in card["recipe"]) == ("invariance" in card) == (card["config"]["invariance_hidden"] > 0)


def test_invariance_training_brings_copies_closer_than_the_linear_projection(photos, tmp_path):
    """Trained on the sample's edited copies, the residual MLP puts each of those copies nearer its original,
    relative to the other photos, than the same model without it; and it starts from the linear model."""
    from vqgram.copies import make_copies
    from vqgram.images import probe
    from vqgram.tokenizer.model import load_model
    from vqgram.tokenizer.train_lift import descriptors, edit_pairs

    linear, trained = (train_lift_model(photos, tmp_path / name, config=config, workers=0)
                       for name, config in (("linear", WHITENED), ("trained", replace(INVARIANT, invariance_epochs=30))))
    facts = trained["invariance"]
    assert facts["pairs"] == 60 and facts["final_nce"] < facts["first_nce"]
    assert trained["variance_kept"] == linear["variance_kept"]
    margins = []
    for name in ("linear", "trained"):
        model = load_model(tmp_path / name)
        originals, copies, owner = edit_pairs(model, photos, 224)
        with torch.inference_mode():  # centred, as the searcher ranks and the words lift them
            u, v = model.lift.coordinates(originals)[1], model.lift.coordinates(copies)[1]
        cos = v @ u.T  # each copy against every original
        own = cos[torch.arange(len(v)), owner]
        others = cos.masked_fill(torch.nn.functional.one_hot(owner, len(u)).bool(), -2).max(dim=1).values
        margins.append((own - others).mean().item())
    assert margins[1] > margins[0], margins  # a zero (untrained) MLP would give the same margin


def test_invariance_needs_pairs():
    with pytest.raises(ValueError, match="invariance_hidden=8 must be >= 0, and > 0 only with whiten_pairs"):
        LiftConfig(invariance_hidden=8)


@pytest.mark.parametrize("edit", ["hflip", "jpeg10_blur", "crop60"])
def test_an_edited_copy_keeps_more_words_than_another_photo_shares(lift_model, photos, tmp_path, edit):
    tok = Tokenizer.from_model(lift_model[0])
    original = sorted((photos / "coffee").iterdir())[0]
    data, _ = make_copy(Image.open(original).convert("RGB"), EDITS_BY_NAME[edit], 0, "coffee_0")
    (tmp_path / "copy.jpg").write_bytes(data)
    words, copy = tok.words(original), tok.words(tmp_path / "copy.jpg")
    assert len(words) == SMALL.active and max(words.values()) == SMALL.levels
    others = [len(words.keys() & tok.words(p).keys()) for p in sorted((photos / "cat").iterdir())]
    assert len(words.keys() & copy.keys()) > max(others), (edit, len(words.keys() & copy.keys()), others)


def test_save_load_gives_the_same_words(lift_model, queries):
    folder, _ = lift_model
    first = Tokenizer.from_model(folder).encode_image(queries / "cat.jpg")
    again = Tokenizer.from_model(folder).encode_image(queries / "cat.jpg")
    assert first.words == again.words and torch.allclose(first.embedding, again.embedding)
    assert first.embedding.shape == (1, SMALL.dims)
    assert np.isclose(first.embedding.norm().item(), 1.0, atol=1e-5)


def test_an_index_of_lifted_words_finds_each_photo_first(lift_model, photos, tmp_path):
    folder, _ = lift_model
    tok = Tokenizer.from_model(folder)
    index_folder(photos, tmp_path / "idx", tok, progress=False, workers=0)
    searcher = Searcher(tmp_path / "idx", tok)
    for path in sorted((photos / "rocket").iterdir())[:3]:
        for mode in ("bm25", "dense"):
            hits = searcher.search_image(path, 1, SearchOptions(mode=mode))
            assert hits[0].path.endswith(path.name), (mode, path, hits[0])


def test_k_gram_options_on_a_lift_model_are_one_line(photos, tmp_path):
    from click.testing import CliRunner

    from vqgram.cli import main

    result = CliRunner().invoke(main, ["index", str(photos), "--index", str(tmp_path / "i"), "--kernel", "2"])
    assert result.exit_code != 0 and "apply to models with a VQ head" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "i").exists()


def test_descriptors_come_in_the_order_of_the_files(lift_model, photos, tmp_path):
    """A cached image is yielded before the others; the descriptors must still follow the file list,
    or the whitening would pair an original with another image's copy."""
    from vqgram.tokenizer.feature_cache import FeatureCache
    from vqgram.tokenizer.model import load_model
    from vqgram.tokenizer.train import scan_folder
    from vqgram.tokenizer.train_lift import descriptors

    model = load_model(lift_model[0])
    files = scan_folder(photos)[:3]
    cache = FeatureCache(tmp_path, model.config, 224)
    last = descriptors(model, files[2:], 224, cache, workers=0)
    together = descriptors(model, files, 224, cache, workers=0)
    alone = torch.cat([descriptors(model, [f], 224, workers=0) for f in files[:2]] + [last])
    assert torch.allclose(together, alone, atol=2e-3), (together - alone).abs().max()
    assert not torch.allclose(together[0], together[2], atol=2e-3)


def test_words_do_not_depend_on_the_batch(lift_model):
    """Words of 11 descriptors at once equal those of each alone, the re-score equals a plain float64
    product per image, and the words are the true strongest atoms of a full float64 product (the fast
    bf16 or float32 candidates lose none of them)."""
    from vqgram.tokenizer.model import load_model

    head = load_model(lift_model[0]).lift
    x = torch.nn.functional.normalize(torch.randn(11, head.mean.shape[0], generator=torch.Generator().manual_seed(0),
                                                  dtype=torch.float64), dim=-1)
    with torch.inference_mode():
        together = head(x)[1]
        alone = torch.cat([head(row[None])[1] for row in x])
        centred = head.coordinates(x)[1]
        candidates = (centred.float() @ head.atoms.T).topk(SMALL.active + 128, dim=-1).indices
        reference = torch.stack([head.atoms[c].double() @ v for c, v in zip(candidates, centred)])
        assert torch.equal(head._rescore(candidates, centred), reference)
        strongest = (centred @ head.atoms.double().T).topk(SMALL.active, dim=-1).indices
    assert torch.equal(together, alone) and (together > 0).sum(1).eq(SMALL.active).all()
    assert torch.equal((together > 0).nonzero()[:, 1].view(len(x), -1), strongest.sort(dim=-1).values)
    head.atoms_bf16 = None  # the float32 candidates of a CPU without native bf16: the same words
    with torch.inference_mode():
        assert torch.equal(head(x)[1], together)


def test_query_words_are_the_indexed_words_and_the_next_strongest(lift_model):
    """Multiple assignment for queries: N words an image, whose strongest `active` are exactly an indexed
    image's words with the same frequencies; the rest are weaker atoms, never stronger than those."""
    from vqgram.tokenizer.model import load_model

    head = load_model(lift_model[0]).lift
    x = torch.nn.functional.normalize(torch.randn(5, head.mean.shape[0], generator=torch.Generator().manual_seed(1),
                                                  dtype=torch.float64), dim=-1)
    with torch.inference_mode():
        indexed, query = head(x)[1], head(x, SMALL.active + 100)[1]
    assert (query > 0).sum(1).eq(SMALL.active + 100).all()
    kept = indexed > 0
    assert torch.equal(query[kept], indexed[kept])
    extra = (query > 0) & ~kept
    for row in range(len(x)):
        assert query[row][extra[row]].max() <= indexed[row][kept[row]].min()
    with pytest.raises(ValueError, match=f"0 words an image: choose 1 to {SMALL.atoms - 128}"):
        head(x, 0)


def test_query_words_reach_the_search(lift_model, photos, queries, tmp_path):
    """search_image with query_words encodes the query with that many words; similar() has only stored words."""
    tok = Tokenizer.from_model(lift_model[0])
    index_folder(photos, tmp_path / "idx", tok, progress=False, workers=0)
    with Searcher(tmp_path / "idx", tok) as searcher:
        words = searcher.encode_image(queries / "cat.jpg", SMALL.active * 2).words
        assert len(words) == SMALL.active * 2
        hits = searcher.search_image(queries / "cat.jpg", 5, SearchOptions(query_words=SMALL.active * 2))
        assert hits and hits[0].label == "cat"
        with pytest.raises(ValueError, match="query_words applies to image queries"):
            searcher.similar(hits[0].id, 5, SearchOptions(query_words=100))


def test_image_queries_of_a_small_index_take_twice_the_words(lift_model, photos, queries, tmp_path, monkeypatch):
    """Unless given, an image query's word count is sized to the index: twice the model's in the word modes
    up to MORE_QUERY_WORDS_UP_TO documents; the model's own above that, in hybrid, and for a k-gram model."""
    from vqgram.searcher import queries as query_module

    tok = Tokenizer.from_model(lift_model[0])
    index_folder(photos, tmp_path / "idx", tok, progress=False, workers=0)
    image = queries / "cat.jpg"

    def scores(hits):
        return [(h.id, h.score) for h in hits]

    with Searcher(tmp_path / "idx", tok) as searcher:
        assert searcher.query_words_for(SearchOptions()) == 2 * SMALL.active
        assert searcher.query_words_for(SearchOptions(query_words=70)) == 70
        assert searcher.query_words_for(SearchOptions(mode="hybrid")) is None
        doubled = searcher.search(searcher.encode_image(image, 2 * SMALL.active), 8)
        own = searcher.search(searcher.encode_image(image), 8)
        assert scores(searcher.search_image(image, 8)) == scores(doubled) != scores(own)
        monkeypatch.setattr(query_module, "MORE_QUERY_WORDS_UP_TO", 32)  # the sample index holds 33
        assert searcher.query_words_for(SearchOptions()) is None
        assert scores(searcher.search_image(image, 8)) == scores(own)
    assert query_module.collection_query_words(None, "bm25", 10) is None  # a k-gram model
    wide = LiftConfig(dims=64, atoms=600, active=300)  # twice its words would pass the candidates' margin
    assert query_module.collection_query_words(wide, "bm25", 10) == 600 - 128


def test_query_words_on_a_k_gram_model_are_one_line(kgram_tokenizer, queries):
    with pytest.raises(ValueError, match="query words apply to lifted words; this model makes k-gram words"):
        kgram_tokenizer.encode_image(queries / "cat.jpg", 500)
