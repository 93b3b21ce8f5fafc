"""A filter tree (filters.py) as a Tantivy query, and a scored query restricted by it.

The filter joins the scored query as a required clause scoring 0, so the
engine skips documents outside it while ranking and the scores stay those of
the unfiltered query.
"""
from __future__ import annotations

import tantivy

from .filters import And, Filter, Folder, Match, Not, Or, Prefix, Range

Q, Occur = tantivy.Query, tantivy.Occur
_REGEX_META = set("\\.+*?()|[]{}^$#&-~")
_FIELD_TYPES = {"width": tantivy.FieldType.Integer, "height": tantivy.FieldType.Integer,
                "size": tantivy.FieldType.Integer, "mtime": tantivy.FieldType.Float}


def _literal(text: str) -> str:
    """`text` as a regex that matches exactly it (Tantivy's regex dialect is Rust's)."""
    return "".join(f"\\{c}" if c in _REGEX_META else c for c in text)


def filter_query(where: Filter, schema: tantivy.Schema) -> tantivy.Query:
    """The documents passing `where`, as one Tantivy query."""
    if isinstance(where, Match):
        return Q.term_query(schema, where.field, where.value)
    if isinstance(where, Prefix):
        return Q.regex_query(schema, "path", _literal(where.value) + ".*")
    if isinstance(where, Folder):
        return Q.regex_query(schema, "path", f".*/{_literal(where.name)}/.*")
    if isinstance(where, Range):
        if where.lo is None and where.hi is None:
            return Q.all_query()
        # mtime has no fast column (an older schema): its range reads the inverted index
        return Q.range_query(schema, where.field, _FIELD_TYPES[where.field], where.lo, where.hi,
                             where.include_lo, where.include_hi, use_inverted_index=where.field == "mtime")
    if isinstance(where, (And, Or)):
        occur = Occur.Must if isinstance(where, And) else Occur.Should
        return Q.boolean_query([(occur, filter_query(p, schema)) for p in where.parts])
    if isinstance(where, Not):
        return Q.boolean_query([(Occur.Must, Q.all_query()), (Occur.MustNot, filter_query(where.part, schema))])
    raise TypeError(f"not a filter: {where!r}")


def restrict(query: tantivy.Query, where: Filter | None, schema: tantivy.Schema) -> tantivy.Query:
    """`query` limited to the documents passing `where` (unchanged when None)."""
    if where is None:
        return query
    return Q.boolean_query([(Occur.Must, query), (Occur.Must, Q.const_score_query(filter_query(where, schema), 0.0))])
