"""Both engines count documents per label from their term dictionaries, live documents only (a deleted or
replaced document's term stays in the dictionary until a merge), and a reader opened before another
writer's commit sees it after `refresh`."""
import numpy as np
import pytest
from conftest import BACKENDS

from vqgram.indexer.backend import ImageDoc
from vqgram.indexer.store import backend_class


def doc(i: int, label: str) -> ImageDoc:
    return ImageDoc(id=f"id{i}", path=f"/p/{label}/{i}.jpg", label=label, width=10, height=10, mtime=1.0 + i,
                    size=100, words=f"w{i} w{i % 3}", vector=np.eye(8, dtype=np.float32)[i % 8])


@pytest.fixture(params=BACKENDS)
def engine(request, tmp_path):
    cls = backend_class(request.param)
    options = {"dense_dims": 8} if request.param == "lucene" else {}
    writer = cls.create(tmp_path / "idx", embedding_dim=8, **options)
    writer.add([doc(i, label) for i, label in enumerate(["cat", "cat", "dog", "dog", "dog", "golf ball", ""])])
    writer.commit()
    yield cls, writer, tmp_path / "idx"
    writer.close()


def test_counts_are_the_live_documents_per_label(engine):
    _cls, writer, _path = engine
    assert writer.label_counts() == {"cat": 2, "dog": 3, "golf ball": 1}  # the unlabelled one left out
    writer.delete(["id0"])  # a cat gone
    writer.add([doc(2, "cat"), doc(9, "eel")])  # a dog relabelled cat (same id: replaced), an eel added
    writer.commit()
    assert writer.label_counts() == {"cat": 2, "dog": 2, "golf ball": 1, "eel": 1}
    writer.delete(["id5"])
    writer.commit()
    assert "golf ball" not in writer.label_counts() and sum(writer.label_counts().values()) == writer.count() - 1


def test_a_reader_sees_another_writers_commit_after_refresh(engine):
    cls, writer, path = engine
    reader = cls.open(path)
    try:
        assert reader.refresh() is False  # nothing new
        writer.add([doc(20, "eel")])
        writer.commit()
        assert reader.count() == 7 and "eel" not in reader.label_counts()  # still its own snapshot
        assert reader.refresh() is True
        assert reader.count() == 8 and reader.label_counts()["eel"] == 1
        assert "id20" in set(reader.documents().ids.tolist())
        assert reader.refresh() is False
    finally:
        reader.close()
