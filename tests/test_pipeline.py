"""Index the bundled sample with the real default model into a real Tantivy index, then change the folder."""
import shutil

import pytest

from vqgram import KGramConfig, Query, SearchOptions, Searcher, Tokenizer, index_folder, open_index


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, photos, tokenizer):
    folder = tmp_path_factory.mktemp("photos")
    shutil.copytree(photos, folder, dirs_exist_ok=True)
    index = tmp_path_factory.mktemp("idx") / "index"
    report = index_folder(folder, index, tokenizer, workers=0, progress=False)
    return folder, index, report


def test_every_sample_photo_is_indexed(indexed, photos):
    _, index, report = indexed
    n = len(list(photos.rglob("*.jpg")))
    assert (report.indexed, report.total, len(report.skipped)) == (n, n, 0)


def test_search_by_image_finds_its_class(indexed, queries):
    _, index, _ = indexed
    with Searcher(index) as s:
        for query in sorted(queries.glob("*.jpg")):
            hits = s.search_image(query, k=3)
            assert hits[0].label == query.stem, f"{query.name}: top hits {[h.label for h in hits]}"


def test_an_indexed_image_is_its_own_top_hit(indexed):
    folder, index, _ = indexed
    image = sorted(folder.rglob("*.jpg"))[5]
    with Searcher(index) as s:
        hits = s.search_image(image, k=2)
    assert hits[0].path == str(image.resolve())
    assert hits[0].score > hits[1].score


def test_max_terms_prunes_the_query(indexed, tokenizer):
    folder, index, _ = indexed
    image = sorted(folder.rglob("*.jpg"))[0]
    words = tokenizer.words(image)
    with Searcher(index) as s:
        full = s.search(Query(words), 33)
        pruned = s.search(Query(words), 33, SearchOptions(max_terms=5))
    assert len(pruned) <= len(full)
    assert full[0].path == str(image.resolve())


def test_text_query_by_label_and_word(indexed, tokenizer):
    folder, index, _ = indexed
    with Searcher(index) as s:
        assert {h.label for h in s.search_text("label:coffee", k=50)} == {"coffee"}
        image = sorted((folder / "coffee").glob("*.jpg"))[0]
        word = next(iter(tokenizer.words(image)))
        hits = s.search_text(f"{word} AND label:coffee", k=50)
    assert str(image.resolve()) in {h.path for h in hits}


@pytest.mark.parametrize("backend", ["tantivy", pytest.param("lucene", marks=pytest.mark.jvm)])
def test_rerun_is_incremental(tmp_path, photos, tokenizer, backend):
    folder = tmp_path / "photos"
    shutil.copytree(photos / "cat", folder / "cat")
    index = tmp_path / "index"
    first = index_folder(folder, index, tokenizer, backend=backend, workers=0, progress=False)
    assert first.indexed == 3

    again = index_folder(folder, index, tokenizer, backend=backend, workers=0, progress=False)
    assert (again.indexed, again.unchanged, again.removed) == (0, 3, 0)

    images = sorted(folder.rglob("*.jpg"))
    images[0].unlink()  # deleted
    shutil.copy(photos / "coffee" / sorted(p.name for p in (photos / "coffee").iterdir())[0], images[1])  # changed
    shutil.copy(photos / "rocket" / sorted(p.name for p in (photos / "rocket").iterdir())[0],
                folder / "cat" / "new.jpg")  # new
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")  # bad
    shutil.copy(images[2], folder / "cat" / "copy.jpg")  # same bytes as an indexed file
    report = index_folder(folder, index, tokenizer, backend=backend, workers=0, progress=False)
    assert (report.indexed, report.removed, report.duplicates, len(report.skipped)) == (2, 2, 1, 1)
    assert report.skipped[0].path.endswith("broken.jpg")
    assert report.total == 3  # 3 - 1 deleted + 1 new; the changed one replaced
    handle = open_index(index)
    assert str(images[0].resolve()) not in handle.backend.stored()
    handle.close()


def test_another_tokenizer_is_refused(indexed, tokenizer):
    folder, index, _ = indexed
    other = Tokenizer(tokenizer.model, KGramConfig(), 160, tokenizer.model_path, tokenizer.model_sha256)
    with pytest.raises(ValueError, match="made by another tokenizer.*max_size"):
        index_folder(folder, index, other, workers=0, progress=False)
    with pytest.raises(ValueError, match="made by another tokenizer"):
        Searcher(index, tokenizer=other)


def test_dense_hybrid_and_funnel_modes(indexed):
    from vqgram.searcher.searcher import SearchOptions
    from vqgram.searcher.funnel import FunnelStage

    folder, index, _ = indexed
    image = sorted(folder.rglob("*.jpg"))[7]
    with Searcher(index) as s:
        dense = s.search_image(image, k=5, options=SearchOptions(mode="dense"))
        assert dense[0].path == str(image.resolve()) and dense[0].score == pytest.approx(1.0, abs=1e-4)
        wide = SearchOptions(mode="funnel", stages=(FunnelStage(16, 33),))  # shortlist = everything: exact
        assert [h.id for h in s.search_image(image, k=5, options=wide)] == [h.id for h in dense]
        hybrid = s.search_image(image, k=5, options=SearchOptions(mode="hybrid"))
        assert hybrid[0].path == str(image.resolve())
        with pytest.raises(ValueError, match="Tantivy ranks by BM25"):
            s.search_image(image, k=5, options=SearchOptions(mode="tfidf"))


def test_prf_searches_with_the_query_averaged_with_its_neighbours(indexed, tokenizer):
    import numpy as np

    from vqgram.searcher.searcher import SearchOptions

    folder, index, _ = indexed
    vector = tokenizer.encode_image(sorted(folder.rglob("*.jpg"))[5]).embedding[0].numpy()
    with Searcher(index, tokenizer) as s:
        ids, matrix = s.handle.backend.vectors()
        mean = matrix.mean(0)  # dense scores are cosines around the collection's mean
        unit = (matrix - mean) / np.linalg.norm(matrix - mean, axis=1, keepdims=True)
        q = (vector - mean) / np.linalg.norm(vector - mean)
        nearest = np.argsort(-(unit @ q), kind="stable")[:4]
        by_hand = q + unit[nearest].sum(0)
        by_hand = by_hand / np.linalg.norm(by_hand) + mean  # the raw vector whose centred direction it is
        for mode in ("dense", "hybrid", "funnel"):
            with_prf = s.search(Query({}, vector), 8, SearchOptions(mode=mode, prf_depth=4))
            expected = s.search(Query({}, by_hand), 8, SearchOptions(mode=mode))
            assert [h.id for h in with_prf] == [h.id for h in expected]
            assert [h.score for h in with_prf] == pytest.approx([h.score for h in expected], abs=1e-5)
    with pytest.raises(ValueError, match="prf_depth=-1"):
        SearchOptions(mode="dense", prf_depth=-1)


@pytest.mark.parametrize("centre", [True, False])
def test_dense_scores_are_cosines_around_the_collection_mean(indexed, tokenizer, centre):
    import numpy as np

    from vqgram.searcher.searcher import SearchOptions

    folder, index, _ = indexed
    vector = tokenizer.encode_image(sorted(folder.rglob("*.jpg"))[2]).embedding[0].numpy()
    with Searcher(index, tokenizer, centre=centre) as s:
        ids, matrix = s.handle.backend.vectors()
        mean = matrix.mean(0) if centre else np.zeros(matrix.shape[1], np.float32)
        unit = (matrix - mean) / np.linalg.norm(matrix - mean, axis=1, keepdims=True)
        cosines = unit @ ((vector - mean) / np.linalg.norm(vector - mean))
        order = np.argsort(-cosines, kind="stable")[:5]
        hits = s.search(Query({}, vector), 5, SearchOptions(mode="dense"))
        assert [h.id for h in hits] == [ids[i] for i in order]
        assert [h.score for h in hits] == pytest.approx(cosines[order].tolist(), abs=1e-5)
        similar = s.similar(hits[0].id, 1, SearchOptions(mode="dense"))
        assert similar[0].id == hits[0].id and similar[0].score == pytest.approx(1.0, abs=1e-5)


def test_vector_modes_need_an_embedding(indexed):
    from vqgram.searcher.searcher import SearchOptions

    _, index, _ = indexed
    with Searcher(index) as s:
        for mode in ("dense", "hybrid", "funnel"):
            with pytest.raises(ValueError, match=f"mode {mode} needs the query's embedding"):
                s.search(Query({"h0i0j0c1": 1}), 5, SearchOptions(mode=mode))
            with pytest.raises(ValueError, match=f"mode {mode} needs the query's embedding"):
                s.rank(Query({"h0i0j0c1": 1}), None, SearchOptions(mode=mode))


def test_an_index_of_an_earlier_packaged_default_still_opens_and_grows(tmp_path, photos, queries):
    """An index made while lift-v2 was the packaged default, when models were heads.pt files, names "default"
    and that file's checksum: it opens with lift-v2, and a re-run of `vqgram index` without --model adds to
    it with lift-v2."""
    import json

    from click.testing import CliRunner

    from vqgram.cli import main
    from vqgram.config import MANIFEST_NAME
    from vqgram.tokenizer.weights import DEFAULT_MODEL, read_card, weights_sha256

    earlier = DEFAULT_MODEL.parent / "lift-v2"
    assert weights_sha256(earlier) != weights_sha256(DEFAULT_MODEL)
    folder, index = tmp_path / "photos", tmp_path / "index"
    shutil.copytree(photos / "coffee", folder / "coffee")
    index_folder(folder, index, Tokenizer.from_model(earlier), workers=0, progress=False)
    manifest = json.loads((index / MANIFEST_NAME).read_text())
    (index / MANIFEST_NAME).write_text(json.dumps({**manifest, "model_path": "default",
                                                   "model_sha256": read_card(earlier)["legacy_sha256"]}))
    shutil.copytree(photos / "cat", folder / "cat")
    result = CliRunner().invoke(main, ["index", str(folder), "--index", str(index), "--workers", "0"])
    assert result.exit_code == 0, result.output
    with Searcher(index) as s:
        assert s.tokenizer.model_sha256 == weights_sha256(earlier)
        assert len(s.handle.backend.stored()) == len(list(folder.rglob("*.jpg")))
        assert s.search_image(queries / "cat.jpg", k=1)[0].label == "cat"
