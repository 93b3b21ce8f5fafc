"""A filter tree (filters.py) as a Lucene query, and a scored query restricted by it.

The filter joins the scored query as a FILTER clause of a BooleanQuery
(matched, never scored), and a kNN query takes it as its pre-filter, so HNSW
only visits passing documents (Lucene falls back to an exact scan of them
when they are few).
"""
from __future__ import annotations

import math
from typing import Any

from vqgram.indexer import jvm
from vqgram.indexer.filters import And, Filter, Folder, Match, Not, Or, Prefix, Range

_INT_BOUNDS = {"width": (-(2**31), 2**31 - 1), "height": (-(2**31), 2**31 - 1), "size": (-(2**63), 2**63 - 1)}
_WILDCARD_META = set("*?\\")


def _wildcard_literal(text: str) -> str:
    return "".join(f"\\{c}" if c in _WILDCARD_META else c for c in text)


def _range(where: Range) -> Any:
    if where.field == "mtime":
        lo = -math.inf if where.lo is None else where.lo if where.include_lo else math.nextafter(where.lo, math.inf)
        hi = math.inf if where.hi is None else where.hi if where.include_hi else math.nextafter(where.hi, -math.inf)
        return jvm.JDoublePoint.newRangeQuery("mtime", float(lo), float(hi))
    low, high = _INT_BOUNDS[where.field]
    lo = low if where.lo is None else int(where.lo) + (0 if where.include_lo else 1)
    hi = high if where.hi is None else int(where.hi) - (0 if where.include_hi else 1)
    point = jvm.JLongPoint if where.field == "size" else jvm.JIntPoint
    if lo > hi or hi < low or lo > high:
        return jvm.JMatchNoDocsQuery()
    return point.newRangeQuery(where.field, max(lo, low), min(hi, high))


def filter_query(where: Filter) -> Any:
    """The documents passing `where`, as one Lucene query."""
    if isinstance(where, Match):
        return jvm.JTermQuery(jvm.JTerm(where.field, where.value))
    if isinstance(where, Prefix):
        return jvm.JPrefixQuery(jvm.JTerm("path", where.value))
    if isinstance(where, Folder):
        return jvm.JWildcardQuery(jvm.JTerm("path", f"*/{_wildcard_literal(where.name)}/*"))
    if isinstance(where, Range):
        return _range(where)
    if isinstance(where, (And, Or)):
        occur = jvm.JOccur.MUST if isinstance(where, And) else jvm.JOccur.SHOULD
        return _boolean([(filter_query(p), occur) for p in where.parts])
    if isinstance(where, Not):
        return _boolean([(jvm.JMatchAllDocsQuery(), jvm.JOccur.MUST), (filter_query(where.part), jvm.JOccur.MUST_NOT)])
    raise TypeError(f"not a filter: {where!r}")


def _boolean(clauses: list[tuple[Any, Any]]) -> Any:
    """A BooleanQuery of (query, occur) clauses, all built before the builder is touched: pyjnius binds
    a method to its latest instance, so `builder.add(f(...))` with another builder used inside f
    would add to that other builder."""
    builder = jvm.JBooleanQueryBuilder()
    for query, occur in clauses:
        builder.add(query, occur)
    return builder.build()


def restrict(query: Any, where: Filter | None) -> Any:
    """`query` limited to the documents passing `where` (unchanged when None)."""
    if where is None:
        return query
    return _boolean([(query, jvm.JOccur.MUST), (filter_query(where), jvm.JOccur.FILTER)])
