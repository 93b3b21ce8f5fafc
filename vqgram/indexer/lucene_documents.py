"""One image as one Lucene document (the fields are listed in lucene_index's docstring), and the
checks its embedding must pass against the index's settings."""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from vqgram.indexer import jvm
from vqgram.indexer.backend import ImageDoc
from vqgram.indexer.lucene_settings import MAX_VECTOR_DIMS, LuceneSettings

_FIELD_CHARSEQ = "(Ljava/lang/String;Ljava/lang/CharSequence;Lorg/apache/lucene/index/IndexableFieldType;)V"


def l2norm(v: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 0, n, 1)


def checked_vector(doc: ImageDoc, settings: LuceneSettings) -> tuple[np.ndarray, LuceneSettings]:
    """`doc`'s embedding as float32, and the settings with its size recorded (the first vector fixes it).

    Raises ValueError naming the document for a non-finite vector, or a size the index cannot take."""
    v = np.asarray(doc.vector, dtype=np.float32)
    if v.ndim != 1 or not np.isfinite(v).all():
        raise ValueError(f"document {doc.id} ({doc.path}): vector must be a finite 1-d array, got shape {v.shape}")
    s = settings
    if s.vector_dims is None:
        if s.dense_dims is None and v.shape[0] > MAX_VECTOR_DIMS:
            raise ValueError(
                f"a {v.shape[0]}-d embedding is over the {MAX_VECTOR_DIMS}-d HNSW limit; create the index with dense_dims <= {MAX_VECTOR_DIMS}"
            )
        if s.dense_dims is not None and s.dense_dims > v.shape[0]:
            raise ValueError(
                f"document {doc.id}: a {v.shape[0]}-d embedding is shorter than the index's dense_dims={s.dense_dims}"
            )
        return v, dataclasses.replace(s, vector_dims=int(v.shape[0]))
    if v.shape[0] != s.vector_dims:
        raise ValueError(f"document {doc.id}: a {v.shape[0]}-d embedding in an index of {s.vector_dims}-d ones")
    return v, s


class DocumentMaker:
    """Builds Lucene Documents; the Java statics and the `words` field type are looked up once."""

    def __init__(self) -> None:
        self._store_yes = jvm.JFieldStore.YES
        self._dot_product = jvm.JVectorSimilarityFunction.DOT_PRODUCT
        self._words_type = jvm.JFieldType()
        self._words_type.setTokenized(True)
        self._words_type.setStored(True)  # an indexed image can be a query ("similar")
        self._words_type.setIndexOptions(jvm.JIndexOptions.DOCS_AND_FREQS)
        self._words_type.freeze()

    def make(self, doc: ImageDoc, vector: np.ndarray | None, indexed_dims: int | None) -> Any:
        """The document for `doc`; `vector` (checked) is stored whole and indexed on its first `indexed_dims`."""
        # ~20 JNI calls of 10-80 us each: Java statics are looked up once, in __init__
        yes = self._store_yes
        d = jvm.JDocument()
        d.add(jvm.JStringField("id", str(doc.id), yes))
        d.add(jvm.JBinaryDocValuesField("id", jvm.JBytesRef(str(doc.id).encode("utf-8"))))
        d.add(jvm.JStringField("path", str(doc.path), yes))
        d.add(jvm.JStringField("label", str(doc.label), yes))
        for name, value in (("width", int(doc.width)), ("height", int(doc.height))):
            d.add(jvm.JIntPoint(name, value))
            d.add(jvm.JStoredField(name, str(value)))
        d.add(jvm.JLongPoint("size", int(doc.size)))
        d.add(jvm.JStoredField("size", str(int(doc.size))))
        d.add(jvm.JDoublePoint("mtime", float(doc.mtime)))
        d.add(jvm.JStoredField("mtime", repr(float(doc.mtime))))
        d.add(jvm.JField("words", doc.words, self._words_type, signature=_FIELD_CHARSEQ))
        d.add(jvm.JNumericDocValuesField("nwords", len(set(doc.words.split()))))
        if doc.positions:  # a document without local words stores nothing (as one made before they were)
            d.add(jvm.JStoredField("positions", doc.positions))
        if vector is not None:
            d.add(jvm.JStoredField("embedding", vector.astype("<f4").tobytes()))
            prefix = l2norm(vector[:indexed_dims])
            d.add(jvm.JKnnFloatVectorField("vector", prefix.tolist(), self._dot_product))
        return d
