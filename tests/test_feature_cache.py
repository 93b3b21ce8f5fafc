"""The feature-map cache: what it stores, that hits skip decoding, and that cached runs give the same words."""
from dataclasses import replace
from pathlib import Path

import torch

from vqgram.config import ModelConfig
from vqgram.tokenizer.feature_cache import FeatureCache, feature_maps
from vqgram.tokenizer.train import scan_folder


def _encode_all(tokenizer, files, cache):
    words, vectors = [None] * len(files), [None] * len(files)
    for ok, enc, bad in tokenizer.encode_files(files, workers=0, cache=cache):
        assert not bad
        for row, i in enumerate(ok):
            words[i], vectors[i] = enc.words[row], enc.embedding[row]
    return words, torch.stack(vectors)


def test_second_run_reads_the_cache_and_gives_the_same_encodings(photos, tokenizer, tmp_path):
    files = scan_folder(photos)[:6]
    cache = tokenizer.feature_cache(tmp_path)
    first = _encode_all(tokenizer, files, cache)
    assert sorted(p.stem for p in cache.folder.glob("*/*.npy")) == sorted(f.sha for f in files)
    second = _encode_all(tokenizer, files, cache)
    assert first[0] == second[0] and torch.equal(first[1], second[1])
    # float16 maps change the embedding by rounding only
    plain = _encode_all(tokenizer, files, None)
    assert torch.allclose(plain[1], first[1], atol=2e-3)


def test_hits_are_not_decoded(photos, tokenizer, tmp_path):
    files = scan_folder(photos)[:3]
    cache = tokenizer.feature_cache(tmp_path)
    list(feature_maps(tokenizer.model, files, 224, cache=cache, workers=0))
    gone = [replace(f, path=str(tmp_path / "moved-away.jpg")) for f in files]
    batches = list(feature_maps(tokenizer.model, gone, 224, cache=cache, workers=0))
    assert sorted(i for ok, _, _ in batches for i in ok) == [0, 1, 2]
    assert all(not bad for _, _, bad in batches)


def test_folder_names_the_backbone_weights_and_size(tmp_path: Path):
    a = FeatureCache(tmp_path, ModelConfig(), 224)
    assert FeatureCache(tmp_path, ModelConfig(), 224).folder == a.folder
    assert FeatureCache(tmp_path, ModelConfig(), 288).folder != a.folder
    assert FeatureCache(tmp_path, ModelConfig(backbone_weights=None), 224).folder != a.folder
    assert '"max_size": 224' in (a.folder / "key.json").read_text()
