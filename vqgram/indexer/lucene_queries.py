"""Lucene queries from vqgram's inputs: weighted word disjunctions (BM25/TF-IDF), the exact Jaccard
query, and the user's own query syntax over `words` and the metadata fields."""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from vqgram.indexer import jvm


def java_error(e: Exception) -> str:
    """The first line of a Java exception's message (pyjnius puts it in `innermessage`)."""
    msg = str(getattr(e, "innermessage", None) or e).strip().splitlines()
    return msg[0] if msg else type(e).__name__


def boosts(weights: Iterable[float]) -> list[float]:
    """Weights as Lucene's float boosts; raises ValueError for a negative or non-finite one."""
    w = np.fromiter(weights, dtype=np.float64)
    if not (np.isfinite(w).all() and (w >= 0).all()):
        bad = w[~(np.isfinite(w) & (w >= 0))][0]
        raise ValueError(f"query weight {bad!r} must be finite and >= 0 (Lucene boosts cannot be negative)")
    return w.tolist()


def words_query(weights: dict[str, float], boosted: bool = True) -> Any:
    """The disjunction of `words` term queries, boosted by weight, as one Lucene BooleanQuery
    (BooleanQuery(SHOULD BoostQuery(TermQuery))), built by the Java helper in one call."""
    terms = list(weights)
    return jvm.JQueries.disjunction("words", terms, boosts(weights.values()) if boosted else None)


def jaccard_query(weights: dict[str, float]) -> Any:
    """J = s / (|A| + |B| - s) as a FunctionScoreQuery over the plain disjunction.

    With BooleanSimilarity every matched term scores its boost (1), so the
    disjunction's score s is |A ∩ B|; `nwords` doc values hold |B|. The
    arithmetic runs in float32 on exact small integers, so equal fractions
    tie exactly. Documents sharing no word (J = 0) are not returned.
    """
    q = words_query(weights, boosted=False)
    inter = jvm.JValueSource.fromDoubleValuesSource(jvm.JDoubleValuesSource.SCORES)
    union = jvm.JSumFloatFunction(
        [jvm.JIntFieldSource("nwords"), jvm.JLinearFloatFunction(inter, -1.0, float(len(weights)))]
    )
    return jvm.JFunctionScoreQuery(q, jvm.JDivFloatFunction(inter, union).asDoubleValuesSource())


class TextQueryParser:
    """Lucene query syntax (StandardQueryParser) over vqgram's fields; its analyzers are built on first use."""

    def __init__(self) -> None:
        self._parts: tuple[Any, Any] | None = None

    def parse(self, query: str) -> Any:
        """`words` is the default field; id/path/label are single terms; width/height/size/mtime take
        ranges (`width:[0 TO 300]`). Raises ValueError naming the query when it does not parse."""
        if self._parts is None:
            self._parts = (_query_analyzer(), _points_config())
        analyzer, points = self._parts
        parser = jvm.JStandardQueryParser(analyzer)
        parser.setPointsConfigMap(points)
        try:
            return parser.parse(query, "words")
        except Exception as e:
            raise ValueError(f"invalid Lucene query {query!r}: {java_error(e)}") from e


def _query_analyzer() -> Any:
    keyword = jvm.JKeywordAnalyzer()
    per_field = jvm.JHashMap()
    for f in ("id", "path", "label"):
        per_field.put(f, keyword)
    return jvm.JPerFieldAnalyzerWrapper(jvm.JWhitespaceAnalyzer(), per_field)


def _points_config() -> Any:
    fmt = jvm.JNumberFormat.getInstance(jvm.JLocale.ROOT)
    fmt.setGroupingUsed(False)
    JClass = jvm.JClass
    types = {"width": "java.lang.Integer", "height": "java.lang.Integer", "size": "java.lang.Long", "mtime": "java.lang.Double"}
    m = jvm.JHashMap()
    for f, t in types.items():
        m.put(f, jvm.JPointsConfig(fmt, JClass.forName(t)))
    return m
