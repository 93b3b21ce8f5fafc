"""The bench's synthetic collections: the same documents whichever way, and however batched, they are drawn."""
import numpy as np

from vqgram.eval.synthetic import SyntheticCollection
from vqgram.indexer.rows import EncodedRow


def _rows(n: int = 30, dim: int = 8) -> list[EncodedRow]:
    rng = np.random.default_rng(1)
    rows = []
    for i in range(n):
        v = rng.normal(size=dim).astype(np.float32)
        words = {f"l{w:05d}": int(c) for w, c in zip(rng.choice(500, 20, replace=False), rng.integers(1, 4, 20))}
        rows.append(EncodedRow(id=f"{i:04x}", path=f"p/{i}.jpg", words=words, vector=v / np.linalg.norm(v),
                               label=f"c{i % 3}"))
    return rows


def test_vectors_alone_match_the_documents_whatever_the_batch():
    coll = SyntheticCollection(_rows(), queries=5)
    docs = [d for batch in coll.batches(23, batch=7) for d in batch]
    assert [d.id for d in docs] == [f"s{j:08d}" for j in range(23)]
    same = [d for batch in coll.batches(23, batch=7) for d in batch]
    assert [d.words for d in docs] == [d.words for d in same]
    np.testing.assert_array_equal(np.stack([d.vector for d in docs]), coll.vectors(23, batch=7))
    assert coll.labels(23, batch=7).tolist() == [d.label for d in docs]
    vecs = coll.vectors(23, batch=7)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-5)
    # each batch draws from (seed, first document): a collection of whole batches is the start of a bigger one
    np.testing.assert_array_equal(coll.vectors(35, batch=7)[:21], coll.vectors(21, batch=7))


def test_words_keep_the_base_length_and_come_from_the_vocabulary():
    coll = SyntheticCollection(_rows(), queries=5)
    vocab = set(coll.vocab.tolist())
    for doc in next(coll.batches(10)):
        words = doc.words.split()
        assert set(words) <= vocab
        base_lengths = {sum(b.words.values()) for b in coll.bases}
        assert len(words) in base_lengths
