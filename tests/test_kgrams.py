import pytest
import torch

from vqgram.config import KGramConfig
from vqgram.tokenizer.kgrams import KGramWords


def naive_counts(codes, kind, k, p, s, K):
    """Reference: loop over window positions cell by cell (the definition in ARCHITECTURE.md)."""
    heads, H, W = codes.shape
    Hp, Wp = max(H + 2 * p, k), max(W + 2 * p, k)
    Dp = heads if kind == "2d" else max(heads, k)
    grid = -torch.ones(Dp, Hp, Wp, dtype=torch.long)
    grid[:heads, p:p + H, p:p + W] = codes
    counts = {}
    depth_positions = [None] if kind == "2d" else range(0, Dp - k + 1, s)
    for z0 in depth_positions:
        for y in range(0, Hp - k + 1, s):
            for x in range(0, Wp - k + 1, s):
                for i in range(k):
                    for j in range(k):
                        cells = [(h, h) for h in range(heads)] if kind == "2d" else [(z0 + z, z) for z in range(k)]
                        for h, d in cells:
                            c = int(grid[h, y + i, x + j])
                            if c >= 0:
                                w = f"{'h' if kind == '2d' else 'z'}{d}i{i}j{j}c{c}"
                                counts[w] = counts.get(w, 0) + 1
    return counts


@pytest.mark.parametrize("kind,k,p,s,shape", [
    ("2d", 3, 0, 1, (4, 7, 7)),
    ("2d", 2, 1, 2, (3, 5, 6)),
    ("2d", 3, 0, 1, (2, 1, 1)),  # grid smaller than the kernel: padded, still words
    ("2d", 4, 0, 1, (2, 1, 12)),  # panorama
    ("3d", 2, 0, 1, (4, 5, 5)),
    ("3d", 3, 1, 1, (2, 4, 3)),  # fewer heads than the kernel is deep
])
def test_counts_match_the_definition(kind, k, p, s, shape):
    K = 5
    torch.manual_seed(0)
    codes = torch.randint(0, K, shape)
    kw = KGramWords(KGramConfig(kind, k, p, s), heads=shape[0], codebook_size=K)
    got = kw.to_dict(kw.count(codes.unsqueeze(0))[0])
    assert got == naive_counts(codes, kind, k, p, s, K)
    assert got  # every grid yields words


def test_batch_rows_are_independent():
    kw = KGramWords(KGramConfig(kernel=2), heads=2, codebook_size=4)
    codes = torch.randint(0, 4, (3, 2, 4, 4))
    batch = kw.count(codes)
    for b in range(3):
        assert torch.equal(batch[b], kw.count(codes[b:b + 1])[0])


def test_hand_computed_2x2():
    kw = KGramWords(KGramConfig(kernel=2), heads=1, codebook_size=4)
    codes = torch.tensor([[[[0, 1, 0], [2, 3, 2]]]])  # two window positions
    assert kw.to_dict(kw.count(codes)[0]) == {
        "h0i0j0c0": 1, "h0i0j0c1": 1, "h0i0j1c1": 1, "h0i0j1c0": 1,
        "h0i1j0c2": 1, "h0i1j0c3": 1, "h0i1j1c3": 1, "h0i1j1c2": 1,
    }
    assert kw.to_text(kw.count(codes)[0]).split() == sorted(kw.to_dict(kw.count(codes)[0]), key=kw.word_id)


@pytest.mark.parametrize("kind", ["2d", "3d"])
def test_word_and_id_are_inverse(kind):
    kw = KGramWords(KGramConfig(kind, 3), heads=4, codebook_size=16)
    for i in range(0, kw.vocab_size, 37):
        assert kw.word_id(kw.word(i)) == i
    assert len(set(kw.vocab.tolist())) == kw.vocab_size
    assert all(w.isascii() and w == w.lower() for w in kw.vocab[:50])


def test_foreign_words_are_rejected():
    kw = KGramWords(KGramConfig("2d", 3), heads=4, codebook_size=16)
    with pytest.raises(ValueError, match="not a word of this tokenizer"):
        kw.word_id("z0i0j0c0")
    with pytest.raises(ValueError, match="out of range"):
        kw.word_id("h9i0j0c0")


def test_bad_config_is_a_sentence():
    with pytest.raises(ValueError, match="not one of"):
        KGramConfig(kind="4d")
    with pytest.raises(ValueError, match="kernel=0"):
        KGramConfig(kernel=0)
