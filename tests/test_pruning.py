"""Query-term pruning by weight x idf on real engines: document frequencies, the words kept, the search run."""
import math

import numpy as np
import pytest

from vqgram.indexer.backend import ImageDoc
from vqgram.indexer.store import backend_class
from vqgram.searcher.queries import prune_by_idf

BACKENDS = ["tantivy", pytest.param("lucene", marks=pytest.mark.jvm)]
WORDS = ["common common rare", "common mid", "common mid", "common other"]


@pytest.fixture(params=BACKENDS)
def engine(request, tmp_path):
    options = {"dense_dims": 8} if request.param == "lucene" else {}
    engine = backend_class(request.param).create(tmp_path / "idx", **options)
    engine.add([ImageDoc(id=f"d{i}", path=f"/p/{i}.jpg", label="", width=1, height=1, mtime=0.0, size=1, words=w,
                         vector=np.eye(8, dtype=np.float32)[i]) for i, w in enumerate(WORDS)])
    engine.commit()
    yield engine
    engine.close()


def test_document_frequencies(engine):
    assert engine.doc_freqs(["common", "mid", "rare", "absent"]) == {"common": 4, "mid": 2, "rare": 1, "absent": 0}


def test_pruning_keeps_the_words_of_highest_weight_times_idf(engine):
    weights = {"common": 2.0, "mid": 1.0, "rare": 1.0, "absent": 5.0}
    dfs = engine.doc_freqs(weights)
    idf = {w: math.log(1 + (4 - df + 0.5) / (df + 0.5)) for w, df in dfs.items() if df}
    assert 2.0 * idf["common"] < 1.0 * idf["mid"] < 1.0 * idf["rare"]  # the order the test relies on
    assert prune_by_idf(weights, dfs, 4, 2) == {"rare": 1.0, "mid": 1.0}  # "absent" can score nothing: dropped
    assert prune_by_idf(weights, dfs, 4, 10) == {"common": 2.0, "mid": 1.0, "rare": 1.0}
    hits = engine.search_words(prune_by_idf(weights, dfs, 4, 1), k=4)
    assert [h.id for h in hits] == ["d0"]  # only the rare word's document
    with pytest.raises(ValueError, match="keep=0 must be at least 1"):
        prune_by_idf(weights, dfs, 4, 0)
